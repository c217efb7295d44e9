"""Issuing SAE reports: stored as issued with their sha256 (also in the audit log), follow-ups as new
versions listing what changed, nothing ever overwritten, and a blinded arm never in the report."""
import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from audit import audit_event
from ecrf.capture.service import save_form
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import SaeReport, Subject
from ecrf.reports import service



def report_events(db, record_id=None):
    query = select(audit_event).where(audit_event.c.action == "report_generated").order_by(audit_event.c.seq)
    if record_id is not None:
        query = query.where(audit_event.c.record == record_id)
    return db.execute(query).mappings().all()


def test_an_initial_report_is_stored_with_its_sha256_and_audited(kit, db, actor, sae_study, site_subject):
    sae_study()
    record = site_subject()
    report = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    assert (report.number, report.version, report.report_type) == ("SAETEST-SAE-001", 1, "initial")
    stored = service.report_pdf(db, report)
    assert stored.startswith(b"%PDF") and hashlib.sha256(stored).hexdigest() == report.sha256
    assert report.pages == len(kit.pdf_pages(stored))
    [event] = report_events(db, record.id)
    assert event["field"] == "/sae-reports/SAETEST-SAE-001/1"
    assert json.loads(event["new_value"])["sha256"] == report.sha256
    assert (event["study"], event["site"], event["subject"], event["form"]) == (
        "saetest", "01", "01-001", "ae")
    # The clock runs from the investigator's awareness (09:30 CET = 08:30 UTC) for 24 hours.
    assert report.awareness_at == dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.timezone.utc)
    assert report.due_at == dt.datetime(2026, 11, 21, 8, 30, tzinfo=dt.timezone.utc)


def test_a_follow_up_is_a_new_version_showing_the_changes_and_the_initial_stays_as_issued(kit, 
        db, actor, sae_study, site_subject):
    sae_study()
    record = site_subject()
    initial = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    initial_pdf, initial_sha = service.report_pdf(db, initial), initial.sha256
    save_form(db, actor, "saetest", "01-001", "", "ae",
              dict(kit.SERIOUS_AE, aeout="RECOVERED/RESOLVED", aeongo="N", aeendat="2026-11-25",
                   saedisdt="2026-11-24"),
              complete=True, seq=record.seq, reason="follow-up information from the ward")
    follow = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    assert (follow.number, follow.version, follow.report_type) == ("SAETEST-SAE-001", 2, "follow-up")
    text = kit.flat("\n".join(kit.pdf_pages(service.report_pdf(db, follow))))
    assert "Report type: Follow-up 1 (version 2)" in text
    assert "Changes since version 1" in text
    assert "Reaction: outcome Recovering/resolving Recovered/resolved" in text
    assert "Reaction: end — 2026-11-25" in text
    assert f"sha256 {initial_sha[:16]}" in text
    db.expire_all()
    again = db.get(SaeReport, initial.id)
    assert again.sha256 == initial_sha and service.report_pdf(db, again) == initial_pdf
    assert [e["field"] for e in report_events(db, record.id)] == [
        "/sae-reports/SAETEST-SAE-001/1", "/sae-reports/SAETEST-SAE-001/2"]


def test_a_follow_up_with_nothing_new_is_refused_and_nothing_is_stored(db, actor, sae_study, site_subject,
                                                                       quick_pdf):
    sae_study()
    record = site_subject()
    service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    with pytest.raises(Conflict, match="nothing changed"):
        service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    assert db.scalar(select(SaeReport.version).order_by(SaeReport.version.desc()).limit(1)) == 1
    assert len(report_events(db)) == 1


def test_the_database_refuses_to_change_or_delete_an_issued_report_or_a_receipt(
        db, actor, connection, sae_study, site_subject, quick_pdf):
    sae_study()
    record = site_subject()
    report = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    service.mark_received(db, actor, "saetest", report.number, 1)
    for statement in ("UPDATE sae_report SET sha256 = 'forged'", "UPDATE sae_report SET pdf = pdf",
                      "DELETE FROM sae_report", "UPDATE sae_receipt SET received_by = 'someone else'",
                      "DELETE FROM sae_receipt"):
        with pytest.raises(DBAPIError, match="append-only"):
            with connection.begin_nested():
                connection.execute(text(statement))
    assert db.scalar(select(SaeReport.sha256)) == report.sha256


def test_refusals_issue_nothing(kit, db, actor, sae_study, site_subject, quick_pdf):
    sae_study()
    record = site_subject(ae=dict(kit.SERIOUS_AE, aeser="N"))
    with pytest.raises(Invalid, match="not serious"):
        service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    with pytest.raises(NotFound):
        service.issue_sae_report(db, actor, "saetest", "01-001", "ae", 99)
    with pytest.raises(NotFound):
        service.issue_sae_report(db, actor, "saetest", "01-001", "cm", 1)
    assert db.scalar(select(SaeReport.id)) is None and report_events(db) == []


def test_a_blinded_report_never_carries_the_arm_even_when_it_is_stored_on_the_subject(kit, 
        db, actor, sae_study, site_subject):
    sae_study(masking="quadruple")
    record = site_subject()
    db.execute(update(Subject).where(Subject.key == "01-001").values(arm="armzeta"))
    report = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    text = "\n".join(kit.pdf_pages(service.report_pdf(db, report)))
    assert "Suspect product Blinded study treatment" in kit.flat(text)
    stored = json.dumps(report.content, ensure_ascii=False) + text
    for word in kit.ARM_WORDS:
        assert word not in stored
        assert word.lower() not in stored.lower()


def test_an_open_label_report_names_the_arm(kit, db, actor, sae_study, site_subject):
    """The control for the blinded test above: the same setup without masking shows the arm."""
    sae_study(masking="none")
    record = site_subject()
    db.execute(update(Subject).where(Subject.key == "01-001").values(arm="armzeta"))
    report = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    text = kit.flat("\n".join(kit.pdf_pages(service.report_pdf(db, report))))
    assert "Suspect product Zetacell active" in text


def test_the_signature_of_the_ae_record_appears_while_it_holds(kit, db, actor, sae_study, site_subject,
                                                               make_user):
    from ecrf.actor import Actor
    from ecrf.review.signatures import sign

    sae_study()
    user = make_user("ida", "investigator", "saetest", sites=["01"], password=kit.PASSWORD)
    record = site_subject()
    ida = Actor(user.id, "ida", "investigator")
    sign(db, ida, "saetest", "01-001", "form", kit.PASSWORD, record_id=record.id)
    signed = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    text = kit.flat("\n".join(kit.pdf_pages(service.report_pdf(db, signed))))
    assert "Electronically signed by Ida (ida)" in text
    assert "Meaning: I approve the data in this form as complete and accurate" in text
    save_form(db, actor, "saetest", "01-001", "", "ae", dict(kit.SERIOUS_AE, aetoxgr=4), complete=True,
              seq=record.seq, reason="grade corrected")
    unsigned = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    text = kit.flat("\n".join(kit.pdf_pages(service.report_pdf(db, unsigned))))
    assert "Electronically signed" not in text
    assert "Investigator signature Ida" in text and "not signed" in text  # listed as a change


def test_report_numbers_count_cases_per_study(db, actor, sae_study, site_subject, quick_pdf):
    sae_study()
    first = site_subject(key="01-001")
    second = site_subject(key="01-002", meds=False)
    a = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", first.seq)
    b = service.issue_sae_report(db, actor, "saetest", "01-002", "ae", second.seq)
    assert (a.number, b.number) == ("SAETEST-SAE-001", "SAETEST-SAE-002")


def test_audit_verify_still_explains_the_data_after_reports(db, actor, sae_study, site_subject, quick_pdf):
    from ecrf.audit_check import verify_database

    sae_study()
    record = site_subject()
    report = service.issue_sae_report(db, actor, "saetest", "01-001", "ae", record.seq)
    service.mark_received(db, actor, "saetest", report.number, 1)
    result = verify_database(db)
    assert result.ok, result.problem
