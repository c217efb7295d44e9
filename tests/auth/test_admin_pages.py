"""The users page: administrators create users, grant and revoke roles per study and site, and
deactivate (never delete); each change audited; others' studies stay invisible."""
import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.auth import accounts
from ecrf.models import RoleGrant, User

PASSWORD = "correct horse battery"


@pytest.fixture
def admin_client(client, login_as, demo, make_user):
    make_user("boss", "admin", "demo")
    login_as("boss")
    return client


@pytest.fixture
def post(client, csrf_from, db):
    def send(page, path, data):
        response = client.post(path, data=dict(data, csrf_token=csrf_from(client.get(page))))
        db.expire_all()
        return response
    return send


def _user(db, username):
    return db.scalar(select(User).where(User.username == username))


def test_create_grant_revoke_deactivate(admin_client, post, db):
    client = admin_client
    created = post("/admin/users", "/admin/users", {"username": "kim", "name": "Kim Jensen",
                                                     "password": "first passphrase here"})
    assert created.status_code == 302 and created.headers["Location"] == "/admin/users/kim"
    assert _user(db, "kim").must_change_password is True
    page = "/admin/users/kim"
    post(page, "/admin/users/kim/roles", {"study": "demo", "role": "site_staff", "sites": "01, 02"})
    assert accounts.user_grants(db, _user(db, "kim")) == [("demo", "site_staff", "01"), ("demo", "site_staff", "02")]
    assert "Site staff" in client.get(page).get_data(as_text=True)
    post(page, "/admin/users/kim/roles/revoke", {"study": "demo", "role": "site_staff", "site": "02"})
    assert accounts.user_grants(db, _user(db, "kim")) == [("demo", "site_staff", "01")]
    assert db.scalar(select(RoleGrant).where(RoleGrant.revoked_at.is_not(None))) is not None  # kept
    post(page, "/admin/users/kim/deactivate", {"reason": "left the trial"})
    assert _user(db, "kim").active is False
    assert "deactivated" in client.get("/admin/users").get_data(as_text=True)
    actions = db.execute(select(audit_event.c.action, audit_event.c.field, audit_event.c.actor_name)
                         .where(audit_event.c.reason.like("%kim%") | (audit_event.c.reason == "left the trial"))
                         .order_by(audit_event.c.seq)).all()
    assert [(a.action, a.field) for a in actions] == [
        ("user_change", "/users/kim/username"), ("user_change", "/users/kim/name"), ("role_change", "/users/kim/roles"),
        ("role_change", "/users/kim/roles"), ("role_change", "/users/kim/roles"), ("user_change", "/users/kim/active")]
    assert {a.actor_name for a in actions} == {"boss"}


def test_bad_input_is_refused_with_a_message(admin_client, post, db):
    weak = post("/admin/users", "/admin/users", {"username": "kim", "name": "Kim", "password": "kim12345678"})
    assert weak.status_code == 200 and "must not contain the username" in weak.get_data(as_text=True)
    assert _user(db, "kim") is None
    post("/admin/users", "/admin/users", {"username": "kim", "name": "Kim", "password": "first passphrase here"})
    bad_site = post("/admin/users/kim", "/admin/users/kim/roles", {"study": "demo", "role": "monitor", "sites": "99"})
    assert bad_site.status_code == 302 and accounts.user_grants(db, _user(db, "kim")) == []
    assert post("/admin/users/kim", "/admin/users/kim/roles",
                {"study": "nope", "role": "monitor"}).status_code in (302, 404)
    assert accounts.user_grants(db, _user(db, "kim")) == []
    assert post("/admin/users/kim", "/admin/users/boss/deactivate", {"reason": "oops"}).status_code == 409


def test_administrators_see_only_their_studies(admin_client, post, db, actor, make_user, other_study):
    make_user("stranger", "monitor", "other")
    make_user("shared", "monitor", "other")
    accounts.grant_role(db, actor, "shared", "demo", "monitor")
    listing = admin_client.get("/admin/users").get_data(as_text=True)
    assert "shared" in listing and "stranger" not in listing and "other:" not in listing
    assert admin_client.get("/admin/users/stranger").status_code == 404
    assert admin_client.get("/admin/users/nobody").status_code == 404
    page = admin_client.get("/admin/users/shared").get_data(as_text=True)
    assert "roles in studies you do not administer" in page
    # A tampered study key: a study this administrator does not administer.
    assert post("/admin/users/shared", "/admin/users/shared/roles", {"study": "other", "role": "admin"}).status_code in (302, 404)
    assert ("other", "admin", None) not in accounts.user_grants(db, _user(db, "shared"))
    assert post("/admin/users/shared", "/admin/users/shared/deactivate", {"reason": "x"}).status_code == 403
    assert _user(db, "shared").active


def test_only_administrators_use_the_users_page(client, login_as, demo, make_user):
    make_user("nurse", "site_staff", "demo")
    login_as("nurse")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/users/nurse").status_code == 403


def test_account_events_show_the_sign_ins_of_the_users_an_administrator_manages(
        client, login_as, demo, make_user, actor, db, other_study):
    """The part of the trail that belongs to no study (sign-ins, failed sign-ins, lockouts, account
    changes) has its own page; an administrator sees only their users' events there."""
    make_user("boss", "admin", "demo")
    make_user("nurse", "site_staff", "demo")
    make_user("stranger", "monitor", "other")
    login_as("nurse")
    login_as("nurse", "not the password")
    login_as("stranger")
    login_as("ghost", "whatever it is")  # no such user
    login_as("boss")
    page = client.get("/admin/audit")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "nurse" in text and "login failed" in text and "wrong password" in text
    assert "stranger" not in text and "ghost" not in text  # not this administrator's users
    # changes to their users' accounts show whoever made them (here the operator, at the command line)
    accounts.update_user(db, actor, "nurse", name="Nurse Jensen")
    accounts.update_user(db, actor, "stranger", name="Someone Else")
    changes = client.get("/admin/audit?action=user_change").get_data(as_text=True)
    assert "/users/nurse/name" in changes and "Nurse Jensen" in changes
    assert "/users/stranger" not in changes and "Someone Else" not in changes
    filtered = client.get("/admin/audit?user=nurse&action=login_failed").get_data(as_text=True)
    assert "wrong password" in filtered and "boss" not in filtered.split("<table", 1)[1]
    assert client.get("/admin/audit?since=yesterday").status_code == 422
    assert client.get("/admin/audit?before=x").status_code == 422

    download = client.get("/admin/audit/export?format=csv&user=nurse")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "audit-accounts-" in download.headers["Content-Disposition"]
    rows = download.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert len(rows) > 2 and all(",nurse," in row for row in rows[1:])
    export = db.execute(select(audit_event).where(audit_event.c.action == "export")
                        .order_by(audit_event.c.seq.desc())).first()
    assert export.actor_name == "boss" and export.study is None and '"user":"nurse"' in export.new_value


def test_only_administrators_read_the_account_events(client, login_as, demo, make_user):
    make_user("nurse", "site_staff", "demo")
    make_user("mon", "monitor", "demo")
    for who in ("nurse", "mon"):
        login_as(who)
        assert client.get("/admin/audit").status_code == 403
        assert client.get("/admin/audit/export").status_code == 403
