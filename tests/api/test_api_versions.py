"""Optimistic concurrency and status changes through the API: a PUT that changes an existing record
names the version it saw (body ``version`` or ``If-Match``), else 428; a stale one is 409 with the
record as it is now; ``complete`` omitted keeps the status, ``complete: false`` reopens with a reason."""
import pytest

BASE = "/api/v1/studies/demo"
VITALS = f"{BASE}/subjects/01-001/visits/baseline/forms/vitals"
DONE = {"sbp": 120, "assessed": "2026-11-02"}


@pytest.fixture
def nurse(api):
    nurse = api("nurse")
    nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-001"}, expect=201)
    return nurse


def test_get_gives_the_version_as_etag(nurse):
    empty = nurse.call("GET", VITALS, expect=200)
    assert empty.headers["ETag"] == '"0"' and empty.get_json()["version"] == 0
    saved = nurse.call("PUT", VITALS, {"data": {"sbp": 120}}, expect=200)
    assert saved.headers["ETag"] == '"1"'
    assert nurse.call("GET", VITALS, expect=200).headers["ETag"] == '"1"'


def test_changing_a_record_without_a_version_is_428_and_changes_nothing(nurse):
    nurse.call("PUT", VITALS, {"data": {"sbp": 120}}, expect=200)
    refused = nurse.call("PUT", VITALS, {"data": {"sbp": 150}, "reason": "typo"}, expect=428).get_json()
    assert "version" in refused["error"] and 'If-Match: "1"' in refused["error"]
    record = nurse.call("GET", VITALS, expect=200).get_json()
    assert record["data"] == {"sbp": 120} and record["version"] == 1


def test_if_match_names_the_version(nurse):
    nurse.call("PUT", VITALS, {"data": {"sbp": 120}}, expect=200)
    saved = nurse.call("PUT", VITALS, {"data": {"sbp": 130}, "reason": "typo"},
                       headers={"If-Match": '"1"'}, expect=200)
    assert saved.get_json()["version"] == 2 and saved.headers["ETag"] == '"2"'
    stale = nurse.call("PUT", VITALS, {"data": {"sbp": 140}, "reason": "typo"},
                       headers={"If-Match": '"1"'}, expect=409)
    assert stale.get_json()["version"] == 2 and stale.get_json()["data"] == {"sbp": 130}
    assert stale.headers["ETag"] == '"2"'
    both = nurse.call("PUT", VITALS, {"data": {"sbp": 140}, "reason": "typo", "version": 1},
                      headers={"If-Match": '"2"'}, expect=422).get_json()
    assert both["errors"] == [{"pointer": "/version", "message": "does not match If-Match"}]
    for header in ("*", 'W/"2"', '"1", "2"', "2"):
        nurse.call("PUT", VITALS, {"data": {"sbp": 140}, "reason": "typo"},
                   headers={"If-Match": header}, expect=400)
    assert nurse.call("GET", VITALS, expect=200).get_json()["data"] == {"sbp": 130}


def test_version_zero_creates_once(nurse):
    nurse.call("PUT", VITALS, {"data": {"sbp": 120}, "version": 0}, expect=200)
    stale = nurse.call("PUT", VITALS, {"data": {"sbp": 99}, "version": 0}, expect=409).get_json()
    assert stale["version"] == 1 and stale["data"] == {"sbp": 120}


def test_complete_omitted_keeps_a_complete_record_complete(nurse):
    nurse.call("PUT", VITALS, {"data": DONE, "complete": True}, expect=200)
    kept = nurse.call("PUT", VITALS, {"data": dict(DONE, sbp=121), "version": 1, "reason": "typo"},
                      expect=200).get_json()
    assert kept["status"] == "complete"
    # ... and is checked as complete: a required field cannot go missing by the way
    incomplete = nurse.call("PUT", VITALS, {"data": {"sbp": 121}, "version": 2, "reason": "x"},
                            expect=422).get_json()
    assert {"pointer": "/assessed", "message": "this field is required"} in incomplete["errors"]
    assert nurse.call("GET", VITALS, expect=200).get_json()["status"] == "complete"


def test_complete_omitted_on_a_new_record_is_a_draft(nurse):
    assert nurse.call("PUT", VITALS, {"data": {"sbp": 120}}, expect=200).get_json()["status"] == "draft"
    kept = nurse.call("PUT", VITALS, {"data": DONE, "version": 1, "reason": "added"}, expect=200)
    assert kept.get_json()["status"] == "draft"


def test_reopening_a_complete_record_needs_a_reason(nurse, db):
    from sqlalchemy import select

    from audit import audit_event

    nurse.call("PUT", VITALS, {"data": DONE, "complete": True}, expect=200)
    refused = nurse.call("PUT", VITALS, {"data": DONE, "version": 1, "complete": False},
                         expect=422).get_json()
    assert refused["errors"] == [{"pointer": "/reason", "message": "give a reason for reopening the form"}]
    assert nurse.call("GET", VITALS, expect=200).get_json()["status"] == "complete"
    reopened = nurse.call("PUT", VITALS, {"data": DONE, "version": 1, "complete": False,
                                          "reason": "assessment date to be checked"}, expect=200)
    assert reopened.get_json()["status"] == "draft"
    last = db.execute(select(audit_event.c.action, audit_event.c.new_value, audit_event.c.reason)
                      .order_by(audit_event.c.seq.desc()).limit(1)).one()
    assert (last.action, last.reason) == ("status_change", "assessment date to be checked")
    assert "draft" in last.new_value


def test_complete_must_be_a_boolean(nurse):
    nurse.call("PUT", VITALS, {"data": DONE, "complete": "yes"}, expect=422)


def test_the_openapi_document_states_the_rules(api, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    put = spec["paths"]["/api/v1/studies/{study}/subjects/{subject}/visits/{visit}/forms/{form}"]["put"]
    assert "428" in put["responses"] and "If-Match" in [p["name"] for p in put["parameters"]]
    assert "keeps" in spec["components"]["schemas"]["Save"]["properties"]["complete"]["description"]
    # Every POST creates something, and takes a key; an emergency unblinding is an act each time.
    creating = [(path, op) for path, item in spec["paths"].items() for method, op in item.items()
                if method == "post" and not path.endswith("/unblind")]
    assert len(creating) == 5
    for path, op in creating:
        assert "Idempotency-Key" in [p["name"] for p in op.get("parameters", [])], path
