"""Idempotency-Key on API POSTs that create: a retry replays the first answer and creates nothing
twice; the same key with another request is a 422; keys are per user and expire after 24 hours."""
import datetime as dt

import pytest
from sqlalchemy import func, select

from ecrf import idempotency
from ecrf.db import utcnow, write_transaction
from ecrf.models import FormRecord, IdempotencyKey, Subject

BASE = "/api/v1/studies/demo"


def subjects(db):
    return db.scalar(select(func.count()).select_from(Subject))


def test_a_retried_enrolment_replays_the_first_answer(api, db):
    nurse = api("nurse")
    key = {"Idempotency-Key": "3f1c0c2e-enrol-1"}
    first = nurse.call("POST", f"{BASE}/subjects", {"site": "01"}, headers=key, expect=201)
    again = nurse.call("POST", f"{BASE}/subjects", {"site": "01"}, headers=key, expect=201)
    assert again.get_json() == first.get_json() == {"subject": "01-001", "site": "01", "state": "enrolled"}
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert subjects(db) == 1
    # the same document with its keys in another order and other spacing is the same request
    nurse.call("POST", f"{BASE}/subjects", raw='{ "site" : "01" }', headers=key, expect=201)
    assert subjects(db) == 1
    # a new key is a new request
    second = nurse.call("POST", f"{BASE}/subjects", {"site": "01"}, headers={"Idempotency-Key": "k2"},
                        expect=201)
    assert second.get_json()["subject"] == "01-002" and subjects(db) == 2


def test_the_same_key_with_another_request_is_422(api, db):
    nurse = api("nurse")
    key = {"Idempotency-Key": "k1"}
    nurse.call("POST", f"{BASE}/subjects", {"site": "01"}, headers=key, expect=201)
    refused = nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-777"}, headers=key,
                         expect=422).get_json()
    assert "different request" in refused["error"]
    assert subjects(db) == 1


def test_keys_are_per_user(api, db, make_user):
    make_user("nurse2", "site_staff", "demo", sites=["01"])
    key = {"Idempotency-Key": "shared"}
    api("nurse").call("POST", f"{BASE}/subjects", {"site": "01"}, headers=key, expect=201)
    other = api("nurse2").call("POST", f"{BASE}/subjects", {"site": "01"}, headers=key, expect=201)
    assert other.get_json()["subject"] == "01-002" and "Idempotent-Replayed" not in other.headers
    assert subjects(db) == 2


def test_a_refused_request_keeps_no_key(api, db):
    nurse = api("nurse")
    key = {"Idempotency-Key": "k1"}
    nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "bad id!"}, headers=key, expect=422)
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-009"}, headers=key, expect=201)
    assert db.scalar(select(IdempotencyKey.status)) == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\there", "é"])
def test_malformed_keys_are_400(api, db, key):
    nurse = api("nurse")
    nurse.call("POST", f"{BASE}/subjects", {"site": "01"}, headers={"Idempotency-Key": key}, expect=400)
    assert subjects(db) == 0


def test_keys_expire_after_24_hours(api, db, actor):
    nurse = api("nurse")
    nurse.call("POST", f"{BASE}/subjects", {"site": "01"}, headers={"Idempotency-Key": "old"}, expect=201)
    user_id, fingerprint = db.execute(select(IdempotencyKey.user_id, IdempotencyKey.request_hash)).one()
    with write_transaction(db):
        assert idempotency.claim(db, user_id, "old", fingerprint).status == 201
    with write_transaction(db):
        later = utcnow() + idempotency.KEEP + dt.timedelta(minutes=1)
        assert idempotency.claim(db, user_id, "old", fingerprint, now=later) is None  # a new request
        idempotency.forget(db, user_id, "old")
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_retried_log_entry_is_created_once(client, db, actor, write_study, load_study, make_user,
                                             tmp_path):
    from ecrf.auth.accounts import create_token
    from ecrf.capture.service import enrol_subject

    form = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "AE", "type": "object",
            "properties": {"term": {"type": "string", "title": "Term"}}}
    load_study(write_study(tmp_path, {"ae": form}, log_forms=["ae"]))
    make_user("nurse", "site_staff", "t", sites=["01"])
    enrol_subject(db, actor, "t", "01", "01-001")
    headers = {"Authorization": f"Bearer {create_token(db, actor, 'nurse')}", "Idempotency-Key": "ae-1"}
    path = "/api/v1/studies/t/subjects/01-001/forms/ae"
    first = client.post(path, json={"data": {"term": "Headache"}}, headers=headers)
    again = client.post(path, json={"data": {"term": "Headache"}}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Location"] == first.headers["Location"]
    assert first.headers["Location"].endswith("/forms/ae/1")
    assert db.scalar(select(func.count()).select_from(FormRecord)) == 1
    other = client.post(path, json={"data": {"term": "Nausea"}}, headers=headers)
    assert other.status_code == 422
    assert db.scalar(select(func.count()).select_from(FormRecord)) == 1
