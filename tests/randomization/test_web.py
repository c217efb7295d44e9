"""Randomization through the API and the pages: the Randomize button, who gets the arm, the
refusals as 409/422, emergency unblinding (password, audit, e-mail), pharmacy and balance."""
import json

import pytest
from sqlalchemy import func, select

from audit import audit_event
from ecrf.auth.accounts import create_token
from ecrf.models import Allocation, Unblinding
from ecrf.randomization import service
from tests.conftest import TEST_PASSWORD
from tests.reports.test_api import smtp_server  # noqa: F401  (a fixture)


@pytest.fixture
def trial(rz_study, db, actor, make_user):
    sid = rz_study(block_sizes=[2])  # four slots per stratum, exactly
    service.generate_list(db, actor, sid, 4)
    make_user("inv", "investigator", sid, sites=["01"])
    make_user("inv2", "investigator", sid, sites=["02"])
    make_user("pharm", "pharmacist", sid)
    make_user("mon", "monitor", sid)
    return sid


def _api(client, db, actor, username):
    token = create_token(db, actor, username)

    def call(method, path, body=None):
        return client.open(path, method=method, headers={"Authorization": f"Bearer {token}"},
                           data=json.dumps(body) if body is not None else None,
                           content_type="application/json" if body is not None else None)

    return call


def _counts(db):
    return (db.scalar(select(func.count()).select_from(Allocation)),
            db.scalar(select(func.count()).select_from(audit_event)))


def test_randomize_through_the_api(trial, client, db, actor, enrolled, make_user):
    inv = _api(client, db, actor, "inv")
    subject = enrolled(trial)
    base = f"/api/v1/studies/{trial}/subjects/{subject.key}"
    assert inv("GET", base).get_json()["randomization"] == {"randomized": False, "emergency_unblinded": False}
    response = inv("POST", f"{base}/randomize")
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"randomization_number", "randomized_at"}  # blinded: no arm
    shown = inv("GET", base).get_json()["randomization"]
    assert shown["randomization_number"] == body["randomization_number"] and "arm" not in shown
    again = inv("POST", f"{base}/randomize")
    assert again.status_code == 409 and "already randomized" in again.get_json()["error"]
    # Another site's investigator does not even see the subject.
    assert _api(client, db, actor, "inv2")("POST", f"{base}/randomize").status_code == 404


def test_the_arm_is_in_the_answer_of_an_open_label_study(rz_study, client, db, actor, enrolled, make_user):
    sid = rz_study(study_id="openrz", masking="none")
    service.generate_list(db, actor, sid, 4)
    make_user("oinv", "investigator", sid)
    subject = enrolled(sid)
    body = _api(client, db, actor, "oinv")("POST", f"/api/v1/studies/{sid}/subjects/{subject.key}/randomize")
    db.refresh(subject)
    assert body.status_code == 201 and body.get_json()["arm"] == subject.arm is not None


def test_refusals_are_409_or_422_and_consume_nothing(trial, client, db, actor, enrolled):
    inv = _api(client, db, actor, "inv")
    screening = enrolled(trial, complete=False)
    no_sex = enrolled(trial, sex=None)
    before = _counts(db)
    first = inv("POST", f"/api/v1/studies/{trial}/subjects/{screening.key}/randomize")
    assert first.status_code == 409 and "not enrolled" in first.get_json()["error"]
    second = inv("POST", f"/api/v1/studies/{trial}/subjects/{no_sex.key}/randomize")
    assert second.status_code == 422
    assert second.get_json()["errors"] == [{"pointer": "/elig.sex",
                                            "message": "complete 'Eligibility' with 'sex' first"}]
    assert _counts(db)[0] == before[0]
    slots = [enrolled(trial) for _ in range(5)]  # the stratum holds 4 slots
    codes = [inv("POST", f"/api/v1/studies/{trial}/subjects/{s.key}/randomize").status_code for s in slots]
    assert codes == [201] * 4 + [409]


def test_the_subject_page_button_needs_csrf_and_a_confirmation(trial, app, client, db, enrolled, login_as,
                                                               csrf_from):
    subject = enrolled(trial)
    login_as("inv")
    page = client.get(f"/studies/{trial}/subjects/{subject.key}")
    text = page.get_data(as_text=True)
    assert "Randomize</button>" in text and "I confirm" in text
    url = f"/studies/{trial}/subjects/{subject.key}/randomize"
    assert client.post(url, data={"confirm": "y"}).status_code == 400  # no CSRF token
    token = csrf_from(page)
    unconfirmed = client.post(url, data={"csrf_token": token}, follow_redirects=True)
    db.refresh(subject)
    assert "Tick the box" in unconfirmed.get_data(as_text=True) and subject.arm is None
    done = client.post(url, data={"csrf_token": token, "confirm": "y"}, follow_redirects=True)
    text = done.get_data(as_text=True)
    row = db.scalar(select(Allocation).where(Allocation.subject_id == subject.id))
    assert f"number {row.randomization_number}" in text and "Randomized on" in text
    assert "Quokkafen" not in text and "Wombatine" not in text


def test_emergency_unblinding_through_the_api(trial, app, client, db, actor, enrolled, smtp_server):  # noqa: F811
    sink, port = smtp_server
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")
    subject = enrolled(trial)
    service.randomize(db, actor, trial, subject.key)
    inv = _api(client, db, actor, "inv")
    url = f"/api/v1/studies/{trial}/subjects/{subject.key}/unblind"
    before = db.scalar(select(func.count()).select_from(Unblinding))
    wrong = inv("POST", url, {"reason": "anaphylaxis", "password": "nope"})
    assert wrong.status_code == 422
    assert db.scalar(select(audit_event.c.action).order_by(audit_event.c.seq.desc()).limit(1)) == "login_failed"
    assert inv("POST", url, {"password": TEST_PASSWORD}).status_code == 422  # no reason
    assert db.scalar(select(func.count()).select_from(Unblinding)) == before
    assert _api(client, db, actor, "mon")("POST", url, {"reason": "x", "password": TEST_PASSWORD}).status_code == 403
    done = inv("POST", url, {"reason": "anaphylaxis", "password": TEST_PASSWORD})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["arm"] == subject.arm and done.get_json()["notified"] == "sent"
    message = sink.received[0]
    assert message.rcpt_tos == ["safety@example.org"]
    content = message.content.decode()
    assert "anaphylaxis" in content and subject.key in content
    assert "Quokkafen" not in content and "Wombatine" not in content and subject.arm not in content
    event = db.execute(select(audit_event).where(audit_event.c.action == "unblind",
                                                 audit_event.c.field == "/arm")).one()
    assert (event.actor_name, event.reason, event.subject) == ("inv", "anaphylaxis", subject.key)
    # The arm shows to that investigator from now on, to nobody else blinded.
    shown = inv("GET", f"/api/v1/studies/{trial}/subjects/{subject.key}").get_json()["randomization"]
    assert shown["arm"] == subject.arm and shown["emergency_unblinded"]
    other = _api(client, db, actor, "mon")("GET", f"/api/v1/studies/{trial}/subjects/{subject.key}").get_json()
    assert "arm" not in other["randomization"] and other["randomization"]["emergency_unblinded"]


def test_the_unblinding_page_asks_for_reason_password_and_confirmation(trial, client, db, actor, enrolled,
                                                                       login_as, csrf_from):
    subject = enrolled(trial)
    service.randomize(db, actor, trial, subject.key)
    login_as("inv")
    url = f"/studies/{trial}/subjects/{subject.key}/unblind"
    page = client.get(url)
    token = csrf_from(page)
    refused = client.post(url, data={"csrf_token": token, "reason": "SUSAR", "password": TEST_PASSWORD})
    assert refused.status_code == 422
    wrong = client.post(url, data={"csrf_token": token, "reason": "SUSAR", "password": "bad", "confirm": "y"})
    assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
    ok = client.post(url, data={"csrf_token": token, "reason": "SUSAR", "password": TEST_PASSWORD, "confirm": "y"},
                     follow_redirects=True)
    text = ok.get_data(as_text=True)
    assert "emergency-unblinded" in text and ("Quokkafen" in text or "Wombatine" in text)


def test_pharmacy_and_balance_for_unblinded_roles_only(trial, client, db, actor, enrolled, login_as):
    subjects = [enrolled(trial, site) for site in ("01", "02", "01")]
    for s in subjects:
        service.randomize(db, actor, trial, s.key)
    login_as("pharm")
    pharmacy = client.get(f"/studies/{trial}/pharmacy").get_data(as_text=True)
    assert all(s.key in pharmacy for s in subjects)
    home = client.get(f"/studies/{trial}").get_data(as_text=True)
    assert "Pharmacy" in home and "Randomization balance" in home
    balance = client.get(f"/studies/{trial}/randomization/balance").get_data(as_text=True)
    assert "site=02; elig.sex=F" in balance and "Overall" in balance
    api = _api(client, db, actor, "pharm")("GET", f"/api/v1/studies/{trial}/randomization/balance").get_json()
    assert sum(api["overall"].values()) == 3
    client.get("/logout")
    login_as("mon")
    assert client.get(f"/studies/{trial}/pharmacy").status_code == 403
    assert client.get(f"/studies/{trial}/randomization/balance").status_code == 403
    assert "Pharmacy" not in client.get(f"/studies/{trial}").get_data(as_text=True)
    assert _api(client, db, actor, "mon")("GET", f"/api/v1/studies/{trial}/randomization/balance").status_code == 403


def test_a_retried_randomization_with_its_key_gets_the_first_answer(trial, client, db, actor, enrolled):
    token = create_token(db, actor, "inv")
    subject = enrolled(trial)
    path = f"/api/v1/studies/{trial}/subjects/{subject.key}/randomize"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "rz-7f3c"}
    first = client.post(path, headers=headers)
    before = _counts(db)
    retried = client.post(path, headers=headers)
    assert first.status_code == retried.status_code == 201
    assert retried.get_json() == first.get_json() and retried.headers["Idempotent-Replayed"] == "true"
    assert _counts(db) == before  # no second allocation, no event
