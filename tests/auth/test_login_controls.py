"""Login and session controls (Part 11 / Annex 11) beyond tests/web/test_login.py: the hash and the
password policy, configurable lockout that expires, cookies, headers, deactivation ending sessions
and tokens at once, and the audit of every sign-in event and refusal."""
import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from audit import audit_event
from ecrf import create_app
from ecrf.auth import accounts, passwords
from ecrf.errors import Invalid
from ecrf.models import User

PASSWORD = "correct horse battery"


def _actions(db, username):
    return [r.action for r in db.execute(select(audit_event.c.action).where(
        audit_event.c.actor_name == username).order_by(audit_event.c.seq))]


def test_passwords_are_argon2id_hashes():
    stored = passwords.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert passwords.verify_password(stored, PASSWORD) and not passwords.verify_password(stored, "x" * 12)
    assert not passwords.verify_password("not a hash", PASSWORD)


@pytest.mark.parametrize("password,why", [
    ("short1!", "at least 10 characters"),
    ("nurse-2026-password", "must not contain the username"),
    ("Password123", "10,000 most common"),
    ("sunshine2026!", "10,000 most common"),
    ("1qaz2wsx3edc", "10,000 most common"),
    ("aaaaaaaaaaaa", "too few different characters"),
    ("abcdabcdabcd", "repeats one short block"),
    ("Xy7!Xy7!Xy7!", "repeats one short block"),
    ("qwertz-asdf", "keyboard or counting run"),
    ("zxcvbnm,./99", "keyboard or counting run"),
    ("9876543210ab", "keyboard or counting run"),
    ("abcdefghijkl", "keyboard or counting run"),
    ("ecrf-demo-2026", "published demo password"),
    ("My-ECRF-Demo-2027", "published demo password"),
])
def test_the_password_policy(db, actor, password, why):
    with pytest.raises(Invalid, match=why):
        accounts.create_user(db, actor, "nurse", password)


@pytest.mark.parametrize("password", ["correct horse battery", "violet tractor lantern 42", "Tr0ub4dor&3x",
                                      "myDog-Rex-1998"])
def test_the_policy_lets_good_passwords_through(password):
    passwords.check_policy(password, "nurse")


def test_the_common_list_ships_with_the_package():
    assert len(passwords.COMMON) == 10_000 and {"123456", "password", "qwerty"} <= passwords.COMMON


def test_the_demo_password_only_through_the_demo(db, actor, make_user):
    make_user("nurse")
    with pytest.raises(Invalid, match="published demo password"):
        accounts.update_user(db, actor, "nurse", password=passwords.DEMO_PASSWORD)
    assert accounts.create_user(db, actor, "demo-user", passwords.DEMO_PASSWORD, demo_account=True).active


def test_a_refused_password_on_the_page_says_why(client, login_as, make_user, csrf_from, db):
    make_user("nurse")
    login_as("nurse")
    page = client.get("/account/password")
    answer = client.post("/account/password", data={"csrf_token": csrf_from(page), "current": PASSWORD,
                                                     "new": "qwertyuiop[]", "confirm": "qwertyuiop[]"})
    assert answer.status_code == 200 and "keyboard or counting run" in answer.get_data(as_text=True)


def test_first_sign_in_forces_a_change_except_for_scripted_accounts(cli, db):
    assert cli("user", "create", "scripted", "--name", "Scripted User", "--password-stdin",
               input=PASSWORD + "\n").exit_code == 0
    assert cli("user", "create", "typed", input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    users = {u.username: u.must_change_password for u in db.scalars(select(User))}
    assert users == {"scripted": False, "typed": True}


def test_lockout_is_configurable_and_ends_after_its_time(db, connection, demo, make_user, csrf_from):
    make_user("nurse", "site_staff", "demo")
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "k", "DATABASE_BIND": connection,
                      "INSTANCE_PATH": "/nonexistent", "LOCKOUT_ATTEMPTS": 3, "LOCKOUT_MINUTES": 2})
    client = app.test_client()

    def login(password):
        token = csrf_from(client.get("/login"))
        return client.post("/login", data={"username": "nurse", "password": password, "csrf_token": token})

    for _ in range(3):
        assert login("wrong password!").status_code == 401
    assert login(PASSWORD).status_code == 401  # locked, the right password does not help
    db.expire_all()
    user = db.scalar(select(User).where(User.username == "nurse"))
    remaining = user.locked_until - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=1) < remaining <= dt.timedelta(minutes=2)
    db.execute(update(User).where(User.id == user.id).values(
        locked_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    assert login(PASSWORD).status_code == 302  # the lockout is over
    assert _actions(db, "nurse").count("lockout") == 1


def test_cookies_are_httponly_samesite_and_secure_in_production(demo, make_user, connection, csrf_from):
    make_user("nurse", "site_staff", "demo")

    def cookie(mode, **extra):
        app = create_app({"ECRF_ENV": mode, "SECRET_KEY": "k" * 32, "DATABASE_BIND": connection,
                          "INSTANCE_PATH": "/nonexistent", **extra})
        client = app.test_client()
        token = csrf_from(client.get("/login"))
        return client.post("/login", data={"username": "nurse", "password": PASSWORD,
                                           "csrf_token": token}).headers["Set-Cookie"]

    production = cookie("production")
    assert "HttpOnly" in production and "SameSite=Lax" in production and "Secure" in production
    # The documented exception: the demo on plain-HTTP loopback.
    development = cookie("development", SECURE_COOKIES=False)
    assert "HttpOnly" in development and "SameSite=Lax" in development and "Secure" not in development


def test_pages_with_patient_data_are_not_stored_and_no_template_has_inline_script(client, login_as, demo,
                                                                                   make_user):
    make_user("nurse", "site_staff", "demo")
    login_as("nurse")
    response = client.get("/studies/demo/subjects")
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    from ecrf.paths import resource
    # A script element must load a file (a JSON data block is not run); no event-handler attributes.
    inline = re.compile(r"<script(?![^>]*\b(src=|type=\"application/json\"))[^>]*>|\son[a-z]+\s*=",
                        re.IGNORECASE)
    offenders = [str(p) for p in resource("templates").rglob("*.html") if inline.search(p.read_text())]
    assert offenders == []


def test_deactivation_ends_sessions_and_tokens_at_once(client, login_as, demo, make_user, db, actor):
    make_user("nurse", "site_staff", "demo")
    token = accounts.create_token(db, actor, "nurse")
    login_as("nurse")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/studies/demo").status_code == 200
    assert client.get("/api/v1/studies/demo/subjects", headers=bearer).status_code == 200
    accounts.deactivate_user(db, actor, "nurse", "left the trial")
    assert client.get("/studies/demo").status_code == 302
    assert client.get("/api/v1/studies/demo/subjects", headers=bearer).status_code == 401
    assert db.scalar(select(User).where(User.username == "nurse")) is not None  # never deleted


def test_a_password_change_ends_the_other_sessions(app, demo, make_user, csrf_from, db, actor):
    make_user("nurse", "site_staff", "demo")
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        token = csrf_from(client.get("/login"))
        client.post("/login", data={"username": "nurse", "password": PASSWORD, "csrf_token": token})
    page = first.get("/account/password")
    first.post("/account/password", data={"current": PASSWORD, "new": "another good passphrase",
                                          "confirm": "another good passphrase", "csrf_token": csrf_from(page)})
    assert first.get("/studies/demo").status_code == 200
    assert second.get("/studies/demo").status_code == 302


def test_sign_in_events_and_refusals_are_audited(client, login_as, demo, make_user, db, actor, csrf_from):
    make_user("nurse", "site_staff", "demo", sites=["01"])
    login_as("nurse", "wrong password!")
    login_as("nobody-at-all", "wrong password!")
    login_as("nurse")
    assert client.get("/admin/users").status_code == 403
    token = accounts.create_token(db, actor, "nurse")
    from ecrf.capture.service import enrol_subject
    enrol_subject(db, actor, "demo", "02", "02-001")
    api = client.get("/api/v1/studies/demo/subjects/02-001/visits/baseline/forms/vitals",
                     headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 404
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})
    rows = db.execute(select(audit_event.c.action, audit_event.c.actor_name, audit_event.c.channel,
                             audit_event.c.reason).where(audit_event.c.action.in_(
                                 ["login", "logout", "login_failed", "lockout", "permission_denied"]))
                      .order_by(audit_event.c.seq)).all()
    assert [(r.action, r.actor_name) for r in rows] == [
        ("login_failed", "nurse"), ("login_failed", "nobody-at-all"), ("login", "nurse"),
        ("permission_denied", "nurse"), ("permission_denied", "nurse"), ("logout", "nurse")]
    assert rows[3].reason == "users.manage: GET /admin/users" and rows[3].channel == "page"
    assert rows[4].channel == "api" and rows[4].reason.startswith("form.view: GET /api/v1/")
