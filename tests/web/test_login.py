"""Signing in: CSRF, lockout without revealing usernames, session fixation, redirects, idle timeout."""
import datetime as dt

import pytest
from sqlalchemy import select

from audit import audit_event


@pytest.fixture
def nurse(load_study, make_user):
    load_study("demo")
    return make_user("nurse", "site_staff", "demo")


def _actions(db, username):
    return [r.action for r in db.execute(select(audit_event.c.action).where(
        audit_event.c.actor_name == username).order_by(audit_event.c.seq))]


def test_sign_in_and_out_are_audited(client, login_as, nurse, db, csrf_from):
    response = login_as("nurse")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert "Demo study" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    logout = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert logout.status_code == 302
    assert client.get("/").status_code == 302
    assert _actions(db, "nurse")[-2:] == ["login", "logout"]


def test_login_without_csrf_token_is_refused(client, nurse):
    response = client.post("/login", data={"username": "nurse", "password": "correct horse battery"})
    assert response.status_code == 400


def test_wrong_password_and_unknown_user_get_the_same_answer(client, login_as, nurse):
    wrong = login_as("nurse", "not the password")
    unknown = login_as("nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: r.get_data(as_text=True).replace("nobody-here", "nurse")  # noqa: E731
    assert "Unknown username or wrong password" in strip(wrong)
    import re
    token = re.compile(r'value="[^"]{40,}"')
    assert token.sub("", strip(wrong)) == token.sub("", strip(unknown))


def test_five_failures_lock_the_account_even_for_the_right_password(client, login_as, nurse, db, app):
    for _ in range(app.config["LOCKOUT_ATTEMPTS"]):
        assert login_as("nurse", "wrong password!").status_code == 401
    assert login_as("nurse").status_code == 401
    assert "lockout" in _actions(db, "nurse")
    from ecrf.models import User
    db.expire_all()
    user = db.scalar(select(User).where(User.username == "nurse"))
    assert user.locked_until > dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=14)


def test_session_id_changes_at_sign_in(client, login_as, nurse):
    client.get("/login")
    before = client.get_cookie("session")
    login_as("nurse")
    after = client.get_cookie("session")
    assert after is not None and (before is None or before.value != after.value)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)"])
def test_next_never_redirects_off_site(client, nurse, target, csrf_from):
    token = csrf_from(client.get("/login"))
    response = client.post("/login", data={"username": "nurse", "password": "correct horse battery",
                                           "csrf_token": token, "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_next_returns_to_the_page_asked_for(client, nurse, csrf_from):
    first = client.get("/studies/demo")
    assert first.status_code == 302 and "next=%2Fstudies%2Fdemo" in first.headers["Location"]
    token = csrf_from(client.get("/login"))
    response = client.post("/login", data={"username": "nurse", "password": "correct horse battery",
                                           "csrf_token": token, "next": "/studies/demo"})
    assert response.headers["Location"] == "/studies/demo"


def test_idle_session_ends_and_returns_to_the_same_page(client, login_as, nurse, idle_out):
    login_as("nurse")
    assert client.get("/studies/demo").status_code == 200
    idle_out()
    response = client.get("/studies/demo")
    assert response.status_code == 302
    assert "/login?next=/studies/demo" in response.headers["Location"]


def test_first_login_forces_a_password_change(client, login_as, make_user, load_study):
    load_study("demo")
    make_user("fresh", "monitor", "demo", must_change=True)
    response = login_as("fresh")
    assert "/account/password" in response.headers["Location"]
    assert "/account/password" in client.get("/studies/demo").headers["Location"]


def test_deactivation_ends_existing_sessions(client, login_as, nurse, db, actor):
    from ecrf.auth.accounts import deactivate_user
    login_as("nurse")
    assert client.get("/").status_code == 200
    deactivate_user(db, actor, "nurse")
    assert client.get("/").status_code == 302


def test_other_studies_and_sites_are_not_found(client, login_as, nurse, load_study, tmp_path, db, actor):
    import shutil
    from ecrf.paths import resource
    other = tmp_path / "other"
    shutil.copytree(resource("forms") / "demo", other)
    (other / "study.json").write_text((other / "study.json").read_text().replace('"demo"', '"other"'))
    load_study(other)
    login_as("nurse")
    assert client.get("/studies/other").status_code == 404
    assert client.get("/studies/nope").status_code == 404
    assert client.get("/studies/demo/subjects").status_code == 200
