"""JSON API v1 through real tokens; every response is checked against the OpenAPI document."""
import pytest

BASE = "/api/v1/studies/demo"


def test_enrol_list_and_save_a_visit_form(api, db):
    nurse = api("nurse")
    created = nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-001"}, expect=201)
    assert created.get_json() == {"subject": "01-001", "site": "01", "state": "enrolled"}
    generated = nurse.call("POST", f"{BASE}/subjects", {"site": "01"}, expect=201).get_json()
    assert generated["subject"] == "01-002"
    listing = nurse.call("GET", f"{BASE}/subjects", expect=200).get_json()
    assert [s["subject"] for s in listing["subjects"]] == ["01-001", "01-002"]

    path = f"{BASE}/subjects/01-001/visits/baseline/forms/vitals"
    empty = nurse.call("GET", path, expect=200).get_json()
    assert empty["status"] == "not_started" and empty["version"] == 0
    draft = nurse.call("PUT", path, {"data": {"sbp": 120}}, expect=200).get_json()
    assert draft["status"] == "draft" and draft["version"] == 1
    incomplete = nurse.call("PUT", path, {"data": {"sbp": 120}, "version": 1, "complete": True},
                            expect=422).get_json()
    assert {"pointer": "/assessed", "message": "this field is required"} in incomplete["errors"]
    done = nurse.call("PUT", path, {"data": {"sbp": 120, "assessed": "2026-11-02"}, "version": 1,
                                    "complete": True}, expect=200).get_json()
    assert done["status"] == "complete"
    record = nurse.call("GET", path, expect=200).get_json()
    assert record["data"] == {"sbp": 120, "assessed": "2026-11-02"}
    assert record["form_version"].startswith("vitals@")


def test_changing_saved_data_needs_a_reason_and_a_current_version(api):
    nurse = api("nurse")
    nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-001"}, expect=201)
    path = f"{BASE}/subjects/01-001/visits/baseline/forms/vitals"
    nurse.call("PUT", path, {"data": {"sbp": 120, "assessed": "2026-11-02"}}, expect=200)
    no_reason = nurse.call("PUT", path, {"data": {"sbp": 130, "assessed": "2026-11-02"}, "version": 1},
                           expect=422).get_json()
    assert no_reason["errors"][0]["pointer"] == "/reason"
    nurse.call("PUT", path, {"data": {"sbp": 130, "assessed": "2026-11-02"}, "version": 1,
                             "reason": "transcription error"}, expect=200)
    stale = nurse.call("PUT", path, {"data": {"sbp": 140, "assessed": "2026-11-02"}, "version": 1,
                                     "reason": "again"}, expect=409).get_json()
    assert stale["version"] == 2 and stale["data"]["sbp"] == 130


def test_invalid_data_is_refused_field_by_field_and_nothing_changes(api):
    nurse = api("nurse")
    nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-001"}, expect=201)
    path = f"{BASE}/subjects/01-001/visits/baseline/forms/vitals"
    errors = nurse.call("PUT", path, {"data": {"sbp": 999, "assessed": "2026-02-30", "extra": 1}},
                        expect=422).get_json()["errors"]
    pointers = {e["pointer"] for e in errors}
    assert pointers == {"/sbp", "/assessed", "/extra"}
    assert nurse.call("GET", path, expect=200).get_json()["status"] == "not_started"


@pytest.mark.parametrize("raw,content_type,status", [
    ("[1, 2]", "application/json", 400),
    ("{not json", "application/json", 400),
    ("site=01", "application/x-www-form-urlencoded", 415),
    ("{\"site\": \"" + "x" * (1024 * 1024 + 10) + "\"}", "application/json", 413),
])
def test_malformed_bodies_get_a_clear_4xx(api, raw, content_type, status):
    api("nurse").call("POST", f"{BASE}/subjects", raw=raw, content_type=content_type, expect=status)


def test_site_isolation_and_unknown_ids(api, db, actor):
    from ecrf.capture.service import enrol_subject
    enrol_subject(db, actor, "demo", "02", "02-001")
    nurse, monitor = api("nurse"), api("monitor")
    assert nurse.call("GET", f"{BASE}/subjects", expect=200).get_json()["subjects"] == []
    nurse.call("GET", f"{BASE}/subjects/02-001/visits/baseline/forms/vitals", expect=404)
    nurse.call("POST", f"{BASE}/subjects", {"site": "02"}, expect=404)
    nurse.call("GET", f"{BASE}/subjects?site=02", expect=404)
    nurse.call("GET", "/api/v1/studies/nope/subjects", expect=404)
    nurse.call("GET", f"{BASE}/subjects/02-999/visits/baseline/forms/vitals", expect=404)
    monitor.call("GET", f"{BASE}/subjects/02-001/visits/baseline/forms/vitals", expect=200)
    monitor.call("PUT", f"{BASE}/subjects/02-001/visits/baseline/forms/vitals", {"data": {}}, expect=403)
    monitor.call("POST", f"{BASE}/subjects", {"site": "02"}, expect=403)
    dup = nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "02-001"}, expect=409)
    assert "already exists" in dup.get_json()["error"]


def test_tokens_are_required_and_die_with_their_user(api, client, db, actor):
    nurse = api("nurse")
    assert client.get(f"{BASE}/subjects").status_code == 401
    assert client.get(f"{BASE}/subjects", headers={"Authorization": "Bearer ecrf_forged"}).status_code == 401
    nurse.call("GET", f"{BASE}/subjects", expect=200)
    from ecrf.auth.accounts import deactivate_user
    deactivate_user(db, actor, "nurse")
    nurse.call("GET", f"{BASE}/subjects", expect=401)


def test_missing_data_flags_reach_the_service(api):
    """The demo's vitals offer no missing-data flags, so a flag is refused at its field."""
    nurse = api("nurse")
    nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-001"}, expect=201)
    path = f"{BASE}/subjects/01-001/visits/baseline/forms/vitals"
    flag = {"/sbp": {"flag": "not_done", "reason": "cuff broken"}}
    refused = nurse.call("PUT", path, {"data": {"assessed": "2026-11-02"}, "missing": flag},
                         expect=422).get_json()
    assert refused["errors"] == [{"pointer": "/sbp", "message": "this field cannot be marked as missing"}]
    nurse.call("PUT", path, {"data": {}, "missing": "x"}, expect=422)
    assert nurse.call("GET", path, expect=200).get_json()["status"] == "not_started"


def test_audit_events_through_the_api(api, db, actor):
    from ecrf.capture.service import enrol_subject
    enrol_subject(db, actor, "demo", "02", "02-001")
    nurse, monitor = api("nurse"), api("monitor")
    nurse.call("POST", f"{BASE}/subjects", {"site": "01", "subject": "01-001"}, expect=201)
    path = f"{BASE}/subjects/01-001/visits/baseline/forms/vitals"
    nurse.call("PUT", path, {"data": {"sbp": 120, "assessed": "2026-11-02"}}, expect=200)
    nurse.call("PUT", path, {"data": {"sbp": 125, "assessed": "2026-11-02"}, "version": 1,
                             "reason": "re-measured"}, expect=200)
    history = monitor.call("GET", f"{BASE}/audit?subject=01-001&form=vitals&field=/sbp",
                           expect=200).get_json()["events"]
    assert [(e["action"], e["old"], e["new"]) for e in history] == [("update", "120", "125"),
                                                                    ("create", None, "120")]
    assert history[0]["reason"] == "re-measured" and history[0]["channel"] == "api"
    own = nurse.call("GET", f"{BASE}/audit", expect=200).get_json()["events"]
    assert own and all(e["site"] in ("01", None) for e in own) and "02-001" not in {e["subject"] for e in own}
    monitor.call("GET", f"{BASE}/audit?since=yesterday", expect=422)


def test_the_api_ignores_the_browser_session(api, client, login_as):
    api("nurse")
    login_as("nurse")
    assert client.get(f"{BASE}/subjects").status_code == 401
