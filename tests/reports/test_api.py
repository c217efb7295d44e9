"""The SAE API and pages: issue (201), list, download, refusals (422 naming fields, 404 for another
site, 403 without the right), the sponsor's inbox across sites with receipts, the overdue flag, and
e-mail delivery to a real SMTP server on localhost."""
import datetime as dt
import email
import email.policy
import hashlib
import json
import socket

import pytest
from sqlalchemy import func, select

from audit import audit_event
from ecrf.db import utcnow
from ecrf.models import SaeReport

API = "/api/v1/studies/saetest"


def ae_url(subject="01-001", seq=1):
    return f"{API}/subjects/{subject}/forms/ae/{seq}/sae-reports"


@pytest.fixture
def people(sae_study, make_user):
    """The study, and one user per role the tests need."""
    sae_study()
    make_user("nurse1", "site_staff", "saetest", sites=["01"])
    make_user("nurse2", "site_staff", "saetest", sites=["02"])
    make_user("mon", "monitor", "saetest")
    make_user("spon", "sponsor", "saetest")


def aware(hours_ago):
    return (utcnow() - dt.timedelta(hours=hours_ago)).isoformat(timespec="seconds")


def report_events(db):
    return db.execute(select(audit_event).where(audit_event.c.action == "report_generated")
                      .order_by(audit_event.c.seq)).mappings().all()


def test_issue_list_and_download_a_report(client, people, site_subject, bearer):
    site_subject()
    nurse = bearer("nurse1")
    created = client.post(ae_url(), headers=nurse)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert {"report": "SAETEST-SAE-001", "version": 1, "type": "initial", "site": "01",
            "subject": "01-001"}.items() <= body.items()
    assert len(body["sha256"]) == 64 and created.headers["Location"] == body["pdf"]
    pdf = client.get(body["pdf"], headers=nurse)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert hashlib.sha256(pdf.data).hexdigest() == body["sha256"] == pdf.headers["ETag"].strip('"')
    listed = client.get(ae_url(), headers=nurse).get_json()
    assert [r["report"] for r in listed["reports"]] == ["SAETEST-SAE-001"]
    assert listed["clock"]["hours"] == 24 and listed["clock"]["overdue"] is True


def test_refusals_name_what_is_missing_and_issue_nothing(client, db, people, site_subject, bearer, kit,
                                                         quick_pdf):
    site_subject(ae=dict(kit.SERIOUS_AE, aeser="N"))
    incomplete = {k: v for k, v in kit.SERIOUS_AE.items() if k not in ("saenarr", "saeawdtc", "aeout")}
    site_subject(key="01-002", ae=incomplete, meds=False)
    nurse = bearer("nurse1")
    refused = client.post(ae_url(), headers=nurse)
    assert refused.status_code == 422
    assert "not serious" in refused.get_json()["error"]
    assert refused.get_json()["errors"] == [{"pointer": "/aeser", "message": "must be Yes for an SAE report"}]
    refused = client.post(ae_url("01-002"), headers=nurse)
    assert refused.status_code == 422
    body = refused.get_json()
    assert {e["pointer"] for e in body["errors"]} == {"/saenarr", "/saeawdtc", "/aeout"}
    for named in ("SAE narrative (saenarr)", "Investigator aware of the SAE (saeawdtc)", "Outcome (aeout)"):
        assert named in body["error"]
    assert client.get(ae_url("01-002"), headers=nurse).get_json()["reports"] == []
    assert db.scalar(select(SaeReport.id)) is None and report_events(db) == []


def test_another_sites_subject_is_not_found_and_roles_are_checked(client, people, site_subject, bearer,
                                                                  login_as, quick_pdf):
    site_subject()
    issued = client.post(ae_url(), headers=bearer("nurse1")).get_json()
    other_site = bearer("nurse2")
    assert client.post(ae_url(), headers=other_site).status_code == 404
    assert client.get(ae_url(), headers=other_site).status_code == 404
    assert client.get(issued["pdf"], headers=other_site).status_code == 404
    monitor = bearer("mon")
    assert client.get(ae_url(), headers=monitor).status_code == 200
    assert client.post(ae_url(), headers=monitor).status_code == 403
    receipt = f"{API}/sae-reports/SAETEST-SAE-001/1/received"
    assert client.post(receipt, headers=bearer("nurse1")).status_code == 403
    anonymous = client.post(ae_url())
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    login_as("nurse1")  # a browser session is no API credential: these routes skip CSRF
    assert client.post(ae_url()).status_code == 401
    assert client.get(ae_url(), headers={"Authorization": "Bearer ecrf_not-a-token"}).status_code == 401


def test_the_sponsor_inbox_spans_sites_and_marks_reports_received(client, db, people, site_subject, bearer,
                                                                  quick_pdf):
    site_subject()
    site_subject(site="02", key="02-001", meds=False)
    assert client.post(ae_url(), headers=bearer("nurse1")).status_code == 201
    assert client.post(ae_url("02-001"), headers=bearer("nurse2")).status_code == 201
    sponsor = bearer("spon")
    inbox = client.get(f"{API}/sae-reports", headers=sponsor).get_json()
    assert sorted((r["site"], r["subject"], r["report"]) for r in inbox["reports"]) == [
        ("01", "01-001", "SAETEST-SAE-001"), ("02", "02-001", "SAETEST-SAE-002")]
    assert all(r["received_at"] is None for r in inbox["reports"])
    site_inbox = client.get(f"{API}/sae-reports", headers=bearer("nurse1")).get_json()
    assert [r["site"] for r in site_inbox["reports"]] == ["01"]
    assert client.get(inbox["reports"][0]["pdf"], headers=sponsor).mimetype == "application/pdf"

    marked = client.post(f"{API}/sae-reports/SAETEST-SAE-002/1/received", headers=sponsor)
    assert marked.status_code == 200 and marked.get_json()["received_by"] == "spon"
    assert client.post(f"{API}/sae-reports/SAETEST-SAE-002/1/received", headers=sponsor).status_code == 409
    [event] = [e for e in report_events(db) if e["field"].endswith("/received")]
    assert (event["field"], event["actor_name"], event["actor_role"], event["site"]) == (
        "/sae-reports/SAETEST-SAE-002/1/received", "spon", "sponsor", "02")
    received = {r["report"]: r["received_at"] for r in
                client.get(f"{API}/sae-reports", headers=sponsor).get_json()["reports"]}
    assert received["SAETEST-SAE-001"] is None and received["SAETEST-SAE-002"] is not None


def test_late_initial_reports_are_flagged_overdue(client, people, site_subject, bearer, kit, quick_pdf):
    site_subject(ae=dict(kit.SERIOUS_AE, saeawdtc=aware(30)))
    site_subject(key="01-002", ae=dict(kit.SERIOUS_AE, saeawdtc=aware(2)), meds=False)
    nurse = bearer("nurse1")
    late = client.post(ae_url(), headers=nurse).get_json()
    on_time = client.post(ae_url("01-002"), headers=nurse).get_json()
    assert (late["overdue"], on_time["overdue"]) == (True, False)
    flags = {r["subject"]: r["overdue"] for r in
             client.get(f"{API}/sae-reports", headers=bearer("spon")).get_json()["reports"]}
    assert flags == {"01-001": True, "01-002": False}


# --- pages ----------------------------------------------------------------------------------------

PAGE = "/studies/saetest/subjects/{subject}/log/ae/{seq}/sae-reports"


def test_the_generate_button_issues_a_report_or_lists_what_is_missing(client, people, site_subject, login_as,
                                                                      csrf_from, kit):
    site_subject()
    site_subject(key="01-002", ae=dict(kit.SERIOUS_AE, saenarr=""), meds=False)
    login_as("nurse1")
    page = client.get(PAGE.format(subject="01-001", seq=1))
    assert page.status_code == 200 and "Generate SAE report" in page.get_data(as_text=True)
    token = csrf_from(page)
    issued = client.post(PAGE.format(subject="01-001", seq=1), data={"csrf_token": token})
    assert issued.status_code == 302
    listing = client.get(issued.headers["Location"]).get_data(as_text=True)
    assert "SAETEST-SAE-001 v1 (PDF)" in listing and "SAETEST-SAE-001 Initial issued" in listing
    assert client.get("/studies/saetest/sae-reports/SAETEST-SAE-001/1.pdf").mimetype == "application/pdf"
    refused = client.post(PAGE.format(subject="01-002", seq=1), data={"csrf_token": token})
    assert refused.status_code == 422
    assert "Nothing was issued." in refused.get_data(as_text=True)
    assert "SAE narrative (saenarr)" in refused.get_data(as_text=True)
    assert client.post(PAGE.format(subject="01-001", seq=1)).status_code == 400  # no CSRF token


def test_the_sponsor_inbox_page_marks_received_and_shows_no_subject_data(client, people, site_subject,
                                                                         login_as, csrf_from, bearer, kit,
                                                                         quick_pdf):
    site_subject(ae=dict(kit.SERIOUS_AE, saeawdtc=aware(30)))
    client.post(ae_url(), headers=bearer("nurse1"))
    login_as("spon")
    inbox = client.get("/studies/saetest/sae-inbox")
    text = inbox.get_data(as_text=True)
    assert inbox.status_code == 200 and "SAETEST-SAE-001 v1" in text and "overdue" in text
    assert "Mark received" in text
    done = client.post("/studies/saetest/sae-reports/SAETEST-SAE-001/1/received",
                       data={"csrf_token": csrf_from(inbox)})
    assert done.status_code == 302
    assert "by spon" in client.get("/studies/saetest/sae-inbox").get_data(as_text=True)
    assert client.get("/studies/saetest/subjects").status_code == 403
    assert client.get(PAGE.format(subject="01-001", seq=1)).status_code == 200  # the reports only


def test_the_site_inbox_shows_unreported_serious_events_with_their_clock(client, people, site_subject,
                                                                         login_as, kit):
    site_subject(ae=dict(kit.SERIOUS_AE, saeawdtc=aware(30)))
    login_as("nurse1")
    text = client.get("/studies/saetest/sae-inbox").get_data(as_text=True)
    assert "Serious adverse events not reported yet" in text and "overdue (30.0 h)" in text


# --- e-mail ---------------------------------------------------------------------------------------

@pytest.fixture
def smtp_server():
    """A real SMTP server on localhost (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.received = []

        async def handle_DATA(self, server, session, envelope):
            self.received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def test_an_issued_report_is_e_mailed_with_the_pdf_attached(app, client, db, people, site_subject, bearer,
                                                            smtp_server, quick_pdf):
    sink, port = smtp_server
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                      SMTP_FROM="ecrf@site.example", SAE_EMAIL_TO=["safety@sponsor.example"])
    site_subject()
    created = client.post(ae_url(), headers=bearer("nurse1")).get_json()
    assert created["email"] == {"to": ["safety@sponsor.example"], "status": "sent"}
    [envelope] = sink.received
    assert envelope.rcpt_tos == ["safety@sponsor.example"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == "SAE report SAETEST-SAE-001 Initial (study saetest, site 01)"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "SAETEST-SAE-001-v1.pdf"
    assert hashlib.sha256(attachment.get_content()).hexdigest() == created["sha256"]
    body = message.get_body(("plain",)).get_content()
    assert created["sha256"] in body and "Salivary" not in body
    [event] = [e for e in report_events(db) if e["field"].endswith("/email")]
    assert json.loads(event["new_value"])["status"] == "sent"


def test_a_failed_delivery_is_recorded_and_the_report_stays_issued(app, client, db, people, site_subject,
                                                                   bearer, quick_pdf):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port, SMTP_SECURITY="none", SMTP_TIMEOUT=5,
                      SAE_EMAIL_TO=["safety@sponsor.example"])
    site_subject()
    created = client.post(ae_url(), headers=bearer("nurse1"))
    assert created.status_code == 201
    assert created.get_json()["email"]["status"].startswith("failed: ConnectionRefusedError")
    assert db.scalar(select(SaeReport.number)) == "SAETEST-SAE-001"


def test_retried_issue_and_receipt_with_an_idempotency_key_happen_once(client, db, people, site_subject,
                                                                       bearer, quick_pdf):
    site_subject()
    nurse = dict(bearer("nurse1"), **{"Idempotency-Key": "issue-ae-1"})
    first = client.post(ae_url(), headers=nurse)
    again = client.post(ae_url(), headers=nurse)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.scalar(select(func.count()).select_from(SaeReport)) == 1
    # without the key, a second POST is a follow-up request (refused here: nothing changed)
    assert client.post(ae_url(), headers=bearer("nurse1")).status_code == 409

    sponsor = dict(bearer("spon"), **{"Idempotency-Key": "receipt-1"})
    receipt = f"{API}/sae-reports/SAETEST-SAE-001/1/received"
    marked = client.post(receipt, headers=sponsor)
    retried = client.post(receipt, headers=sponsor)
    assert marked.status_code == retried.status_code == 200 and retried.get_json() == marked.get_json()
    assert len([e for e in report_events(db) if e["field"].endswith("/received")]) == 1
    reused = client.post(f"{API}/sae-reports/SAETEST-SAE-001/2/received", headers=sponsor)
    assert reused.status_code == 422
