"""The review pages end to end through the real login, CSRF tokens and permission checks."""
import re

import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.review import queries, signatures, status

PASSWORD = "correct horse battery"


@pytest.fixture
def post(client, csrf_from, db):
    """Post ``data`` to ``path`` with the CSRF token of ``page``; the test's session then re-reads."""

    def send(page, path, data):
        token = csrf_from(client.get(page))
        response = client.post(path, data=dict(data, csrf_token=token))
        db.expire_all()
        return response

    return send


def test_query_workflow_through_the_pages(trial, client, login_as, csrf_from, db, post):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    login_as("mon")
    page = f"/studies/revw/records/{record.id}/queries/new"
    assert "Systolic BP" in client.get(page).get_data(as_text=True)
    raised = post(page, page, {"field": "/sbp", "text": "Source says 130?",
                                                  "next": "/studies/revw/subjects"})
    assert raised.status_code == 302 and raised.headers["Location"] == "/studies/revw/subjects"
    (query,) = queries.queries_of_record(db, record)
    matrix = client.get("/studies/revw/subjects").get_data(as_text=True)
    assert "1 open" in matrix
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})

    login_as("nurse")
    thread = f"/studies/revw/queries/{query.id}"
    assert "Source says 130?" in client.get(thread).get_data(as_text=True)
    answered = post(thread, f"{thread}/answer", {"text": "Corrected.", "data_changed": "y"})
    assert answered.status_code == 302
    assert query.state == "answered" and query.messages[-1].data_changed
    # Site staff may not close.
    assert post(thread, f"{thread}/close", {}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})

    login_as("mon")
    listing = client.get("/studies/revw/queries?state=answered&site=01").get_data(as_text=True)
    assert f">{query.id}</a>" in listing and "Corrected" not in listing
    assert "No queries match" in client.get("/studies/revw/queries?state=closed").get_data(as_text=True)
    post(thread, f"{thread}/close", {"text": "fine"})
    assert query.state == "closed"


def test_sign_with_password_re_entry_shows_name_time_meaning(trial, client, login_as, csrf_from, db, post):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    login_as("doc")
    page = f"/studies/revw/records/{record.id}/sign"
    form = client.get(page).get_data(as_text=True)
    assert "I approve the data in this form as complete and accurate" in form
    wrong = post(page, page, {"password": "not it at all"})
    assert wrong.status_code == 422 and "enter your own password" in wrong.get_data(as_text=True)
    assert post(page, page, {"password": PASSWORD}).status_code == 302
    review = client.get(f"/studies/revw/records/{record.id}").get_data(as_text=True)
    assert "Doc" in review and " UTC" in review and "valid" in review
    trial.save("01-001", "baseline", "vitals", {"sbp": 121, "assessed": "2026-11-02"}, reason="typo")
    review = client.get(f"/studies/revw/records/{record.id}").get_data(as_text=True)
    assert "invalidated: the signed data changed after signing" in review
    trial.save("01-001", "baseline", "labs", {"hb": 8.1})
    casebook = "/studies/revw/subjects/01-001/sign"
    assert "casebook as complete and accurate" in client.get(casebook).get_data(as_text=True)
    assert post(casebook, casebook, {"password": PASSWORD}).status_code == 302
    assert len(signatures.signatures_of(db, record.subject)) == 2


def test_a_visit_or_casebook_with_incomplete_forms_is_refused_on_the_page_not_a_500(
        trial, client, login_as, csrf_from, db, post):
    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    trial.save("01-001", "", "cm", {"drug": "paracetamol"}, complete=False)
    login_as("doc")
    visit = "/studies/revw/subjects/01-001/visits/baseline/sign"
    shown = client.get(visit).get_data(as_text=True)
    assert "This visit cannot be signed yet" in shown and "baseline/labs (not started)" in shown
    assert re.search(r"<button type=\"submit\" disabled>Sign</button>", shown)
    refused = post(visit, visit, {"password": PASSWORD})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "not complete: baseline/labs (not started)" in body
    trial.save("01-001", "baseline", "labs", {"hb": 8.1}, complete=False)
    refused = post(visit, visit, {"password": PASSWORD})
    assert refused.status_code == 409 and "baseline/labs (draft)" in refused.get_data(as_text=True)
    casebook = "/studies/revw/subjects/01-001/sign"
    shown = client.get(casebook).get_data(as_text=True)
    assert "baseline/labs (draft)" in shown and "log/cm (draft)" in shown
    refused = post(casebook, casebook, {"password": PASSWORD})
    assert refused.status_code == 409 and "log/cm (draft)" in refused.get_data(as_text=True)
    subject = trial.record("01-001", "baseline", "labs").subject
    assert signatures.signatures_of(db, subject) == []
    trial.save("01-001", "baseline", "labs", {"hb": 8.1})
    shown = client.get(visit).get_data(as_text=True)
    assert "cannot be signed yet" not in shown and '<button type="submit">Sign</button>' in shown
    assert post(visit, visit, {"password": PASSWORD}).status_code == 302


def test_verify_lock_and_the_matrix_statuses(trial, client, login_as, csrf_from, db, post):
    record = trial.save("01-001", "week4", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    login_as("mon")
    review = f"/studies/revw/records/{record.id}"
    response = post(review, f"{review}/verify", {"field": ["/sbp", "/assessed"]})
    assert response.status_code == 302
    assert status.record_status(db, record) == "verified"
    assert "status-verified" in client.get("/studies/revw/subjects").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})
    login_as("dm")
    assert post("/studies/revw/lock", "/studies/revw/lock", {"reason": "DB lock"}).status_code == 302
    assert "status-locked" in client.get("/studies/revw/subjects").get_data(as_text=True)
    assert "locked: no data can be entered" in client.get("/studies/revw/lock").get_data(as_text=True)
    no_reason = post("/studies/revw/lock", "/studies/revw/unlock", {"reason": ""})
    assert no_reason.status_code == 302 and status.record_status(db, record) == "locked"
    post("/studies/revw/lock", "/studies/revw/unlock", {"reason": "late data"})
    assert status.record_status(db, record) == "verified"


def test_tampered_ids_are_not_found_and_refusals_are_audited(trial, client, login_as, csrf_from, db, post):
    own = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    other = trial.save("02-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    query = queries.raise_query(db, trial.actor("mon", "monitor"), "revw", other.id, "/sbp", "?")
    login_as("nurse")
    missing = client.get(f"/studies/revw/records/{own.id + 1000}")
    hidden = client.get(f"/studies/revw/records/{other.id}")
    assert missing.status_code == hidden.status_code == 404
    strip = lambda r: re.sub(r'value="[^"]+"', "", r.get_data(as_text=True))  # noqa: E731
    assert strip(missing) == strip(hidden)  # the same page: nothing tells the ids apart
    assert client.get(f"/studies/revw/queries/{query.id}").status_code == 404
    assert client.get(f"/studies/nope/records/{own.id}").status_code == 404
    token = csrf_from(client.get(f"/studies/revw/records/{own.id}"))
    assert client.post(f"/studies/revw/queries/{query.id}/answer",
                       data={"csrf_token": token, "text": "x"}).status_code == 404
    assert client.post(f"/studies/revw/records/{own.id}/lock", data={"csrf_token": token}).status_code == 403
    denied = db.execute(select(audit_event.c.reason, audit_event.c.site).where(
        audit_event.c.action == "permission_denied", audit_event.c.actor_name == "nurse")
        .order_by(audit_event.c.seq)).all()
    assert [d.reason.split(":")[0] for d in denied] == ["form.view", "query.view", "query.answer", "form.lock"]
    assert denied[0].site == "02" and f"GET /studies/revw/records/{other.id}" in denied[0].reason
    # A field that is not on the form, posted by hand.
    client.post("/logout", data={"csrf_token": token})
    login_as("mon")
    page = f"/studies/revw/records/{own.id}/queries/new"
    bad = post(page, page, {"field": "/password_hash", "text": "?"})
    assert bad.status_code == 422 and queries.queries_of_record(db, own) == []


def test_subject_review_page(trial, client, login_as, db):
    trial.save("01-001", "baseline", "vitals", {"sbp": 190, "assessed": "2026-11-02"})
    login_as("doc")
    page = client.get("/studies/revw/subjects/01-001/review").get_data(as_text=True)
    assert "1 open and 0 answered" in page and "Sign the casebook" in page and "Sign Baseline" in page
    assert client.get("/studies/revw/subjects/02-001/review").status_code == 404


def test_a_data_manager_locks_and_unlocks_a_form_and_a_subject_from_their_review_pages(
        trial, client, login_as, db, post):
    record = trial.save("01-001", "week4", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    login_as("dm")
    for page, target, lock_label, unlock_label in (
            (f"/studies/revw/records/{record.id}", f"/studies/revw/records/{record.id}",
             "Lock this form", "Unlock this form"),
            ("/studies/revw/subjects/01-001/review", "/studies/revw/subjects/01-001",
             "Lock this subject", "Unlock (subject lock)")):
        html = client.get(page).get_data(as_text=True)
        assert f'action="{target}/lock"' in html and lock_label in html and unlock_label not in html
        assert post(page, f"{target}/lock", {"reason": "monitoring visit"}).status_code == 302
        assert status.record_status(db, record) == "locked"
        html = client.get(page).get_data(as_text=True)
        assert f'action="{target}/unlock"' in html and unlock_label in html and "monitoring visit" in html
        assert post(page, f"{target}/unlock", {"reason": "query to resolve"}).status_code == 302
        assert status.record_status(db, record) != "locked"
