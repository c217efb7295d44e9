"""Server-side sessions: the cookie is only a random id; ending the session in the database (sign-out,
sign-out everywhere, password change, deactivation, idle timeout) makes a copy of the cookie useless
for reading and for writing, on any app instance that shares the database."""

import pytest
from sqlalchemy import func, select

from ecrf import create_app
from ecrf.auth import accounts
from ecrf.auth.sessions import token_hash
from ecrf.capture.service import enrol_subject
from ecrf.models import FormRecord, WebSession

PASSWORD = "correct horse battery"
FORM = {"type": "object", "title": "Vitals",
        "properties": {"weight": {"type": "number", "title": "Weight (kg)"}}}
PAGE = "/studies/t/subjects/01-001/v1/vit"


@pytest.fixture
def trial(tmp_path, load_study, write_study, db, actor, make_user):
    load_study(write_study(tmp_path, {"vit": FORM}))
    enrol_subject(db, actor, "t", "01")
    make_user("nurse", "site_staff", "t")


def _app(connection):
    return create_app({"ECRF_ENV": "testing", "SECRET_KEY": "test-secret", "DATABASE_BIND": connection,
                       "INSTANCE_PATH": "/nonexistent-instance"})


def _sign_in(client, csrf_from, username="nurse", password=PASSWORD):
    token = csrf_from(client.get("/login"))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)


def _cookie(client):
    return client.get_cookie("session").value


def _copied(client, csrf_from):
    """Sign ``client`` in and open the form page; returns (its CSRF token, a copy of its cookie)."""
    _sign_in(client, csrf_from)
    token = csrf_from(client.get(PAGE))
    return token, _cookie(client)


def _replay(app, cookie):
    """A fresh browser that carries only a copied session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def _records(db):
    db.expire_all()
    return db.scalar(select(func.count()).select_from(FormRecord))


def _assert_dead(app, cookie, token, db):
    """The copied cookie reads nothing and saves nothing, even with the CSRF token of its page."""
    thief = _replay(app, cookie)
    read = thief.get(PAGE)
    assert read.status_code == 302 and "/login" in read.headers["Location"]
    write = thief.post(PAGE, data={"csrf_token": token, "weight": "99", "ecrf-action": "draft"})
    assert write.status_code in (302, 400) and _records(db) == 0
    if write.status_code == 302:
        assert "/login" in write.headers["Location"]


def test_the_cookie_holds_only_a_random_id_stored_hashed(app, client, trial, csrf_from, db):
    _sign_in(client, csrf_from)
    cookie = _cookie(client)
    assert len(cookie) < 100 and "." not in cookie and "nurse" not in cookie
    row = db.scalar(select(WebSession).where(WebSession.ended_at.is_(None), WebSession.user_id.is_not(None)))
    assert row is not None and row.token_hash == token_hash(cookie) and cookie not in (row.data or "")


def test_a_new_id_at_sign_in(app, client, trial, csrf_from, db):
    client.get("/login")
    before = _cookie(client)
    _sign_in(client, csrf_from)
    assert _cookie(client) != before
    assert _replay(app, before).get(PAGE).status_code == 302  # the id known before sign-in is worthless


def test_a_cookie_copied_before_sign_out_neither_reads_nor_writes(app, client, trial, csrf_from, db):
    token, cookie = _copied(client, csrf_from)
    assert _replay(app, cookie).get(PAGE).status_code == 200  # the copy worked while signed in
    client.post("/logout", data={"csrf_token": token})
    _assert_dead(app, cookie, token, db)
    assert db.scalar(select(WebSession.ended_reason).where(WebSession.ended_reason == "logout")) == "logout"


def test_sign_out_everywhere_from_another_browser(app, client, trial, csrf_from, db):
    token, cookie = _copied(client, csrf_from)
    other = app.test_client()
    _sign_in(other, csrf_from)
    account = other.get("/account")
    assert account.status_code == 200 and "Sign out everywhere" in account.get_data(as_text=True)
    ended = other.post("/account/sign-out-everywhere", data={"csrf_token": csrf_from(account)})
    assert ended.status_code == 302 and "/login" in ended.headers["Location"]
    _assert_dead(app, cookie, token, db)
    assert other.get(PAGE).status_code == 302  # the asking browser is signed out too


def test_a_password_change_ends_the_other_sessions(app, client, trial, csrf_from, db):
    token, cookie = _copied(client, csrf_from)
    mine = app.test_client()
    _sign_in(mine, csrf_from)
    page = mine.get("/account/password")
    new = "violet tractor lantern 42"
    changed = mine.post("/account/password", data={"csrf_token": csrf_from(page), "current": PASSWORD,
                                                   "new": new, "confirm": new})
    assert changed.status_code == 302
    assert mine.get(PAGE).status_code == 200  # the browser that changed it stays signed in
    _assert_dead(app, cookie, token, db)


def test_deactivation_ends_every_session(app, client, trial, csrf_from, db, actor):
    token, cookie = _copied(client, csrf_from)
    accounts.deactivate_user(db, actor, "nurse")
    _assert_dead(app, cookie, token, db)
    assert client.get(PAGE).status_code == 302


def test_an_admin_password_reset_ends_every_session(app, client, trial, csrf_from, db, actor):
    _sign_in(client, csrf_from)
    cookie = _cookie(client)
    accounts.update_user(db, actor, "nurse", password="violet tractor lantern 42")
    assert _replay(app, cookie).get(PAGE).status_code == 302


def test_the_idle_timeout_is_kept_by_the_server(app, client, trial, csrf_from, db, idle_out):
    token, cookie = _copied(client, csrf_from)
    idle_out()
    _assert_dead(app, cookie, token, db)
    assert client.get(PAGE).status_code == 302
    assert db.scalar(select(func.count()).select_from(WebSession).where(WebSession.ended_reason == "idle")) == 1


def test_revocation_holds_across_app_instances(connection, trial, csrf_from, db):
    """Two app servers on one database: a sign-out on one ends the session on the other."""
    first, second = _app(connection), _app(connection)
    browser = first.test_client()
    token, cookie = _copied(browser, csrf_from)
    assert _replay(second, cookie).get(PAGE).status_code == 200  # one session, valid on both
    browser.post("/logout", data={"csrf_token": token})
    _assert_dead(second, cookie, token, db)


def test_csrf_still_guards_a_signed_in_session(app, client, trial, csrf_from, db):
    _sign_in(client, csrf_from)
    client.get(PAGE)
    assert client.post(PAGE, data={"csrf_token": "forged", "weight": "70"}).status_code == 400
    assert client.post(PAGE, data={"csrf_token": csrf_from(client.get(PAGE)), "weight": "70",
                                   "ecrf-action": "draft"}).status_code == 302
    assert _records(db) == 1


def test_last_seen_is_not_written_on_every_request(app, client, trial, csrf_from, db):
    _sign_in(client, csrf_from)
    db.expire_all()
    seen = db.scalar(select(WebSession.last_seen_at).where(WebSession.ended_at.is_(None),
                                                           WebSession.user_id.is_not(None)))
    for _ in range(3):
        assert client.get(PAGE).status_code == 200
    db.expire_all()
    assert db.scalar(select(WebSession.last_seen_at).where(WebSession.ended_at.is_(None),
                                                           WebSession.user_id.is_not(None))) == seen
