"""E-signatures: password re-entry, printed name, UTC time and meaning, linked to the data by a
hash, and invalid (derived, visibly) once the signed data changes."""
import datetime as dt

import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.errors import Conflict, Invalid
from ecrf.review import signatures, status

PASSWORD = "correct horse battery"


def _sign(trial, scope, **kw):
    return signatures.sign(trial.db, trial.actor("doc", "investigator"), "revw", "01-001", scope,
                           kw.pop("password", PASSWORD), **kw)


def test_sign_a_form_and_a_later_change_invalidates_it(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    sig = _sign(trial, "form", record_id=record.id)
    assert sig.printed_name == "Doc" and sig.signed_at.tzinfo == dt.timezone.utc
    assert sig.meaning == "I approve the data in this form as complete and accurate"
    assert sig.record_ids == [record.id] and len(sig.data_hash) == 64
    assert signatures.is_valid(db, sig) and status.record_status(db, record) == "signed"
    trial.save("01-001", "baseline", "vitals", {"sbp": 125, "assessed": "2026-11-02"}, reason="typo")
    assert not signatures.is_valid(db, sig)
    (view,) = signatures.signatures_of(db, record.subject)
    assert view.status == "invalidated: the signed data changed after signing"
    assert status.record_status(db, record) == "complete"
    event = db.execute(select(audit_event).where(audit_event.c.action == "sign")).one()
    assert event.actor_name == "doc" and event.record == record.id and event.reason == sig.meaning


def test_casebook_signature_covers_every_record_and_records_added_later_break_it(trial, db):
    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    trial.save("01-001", "baseline", "labs", {"hb": 8.1})
    sig = _sign(trial, "casebook")
    assert sig.meaning == "I approve the data in this casebook as complete and accurate"
    assert len(sig.record_ids) == 2 and signatures.is_valid(db, sig)
    trial.save("01-001", "", "cm", {"drug": "paracetamol"})
    assert not signatures.is_valid(db, sig)


def test_visit_signature_needs_every_form_complete(trial, db):
    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    with pytest.raises(Conflict, match=r"not complete: baseline/labs \(not started\)$"):
        _sign(trial, "visit", visit_key="baseline")
    trial.save("01-001", "baseline", "labs", {"hb": 8.1}, complete=False)
    with pytest.raises(Conflict, match=r"not complete: baseline/labs \(draft\)$"):
        _sign(trial, "visit", visit_key="baseline")
    trial.save("01-001", "baseline", "labs", {"hb": 8.1})
    sig = _sign(trial, "visit", visit_key="baseline")
    assert signatures.is_valid(db, sig)
    trial.save("01-001", "week4", "vitals", {"sbp": 110, "assessed": "2026-12-01"})
    assert signatures.is_valid(db, sig)  # another visit's data is not part of it


def test_casebook_follows_the_visit_rule_for_every_visit_reached_and_every_log_entry(trial, db):
    """A casebook is not signable while a form of a visit the subject reached is not started or a
    draft (the visit rule, for each visit); a visit never reached is not expected."""
    from ecrf.capture.visits import set_visit_date
    from ecrf.models import Signature

    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    with pytest.raises(Conflict, match=r"casebook cannot be signed .*not complete: baseline/labs \(not started\)$"):
        _sign(trial, "casebook")
    trial.save("01-001", "baseline", "labs", {"hb": 8.1})
    trial.save("01-001", "", "cm", {"drug": "paracetamol"}, complete=False)
    set_visit_date(db, trial.actor("nurse", "site_staff"), "revw", "01-001", "week4", "2026-11-30")
    with pytest.raises(Conflict) as refused:
        _sign(trial, "casebook")
    assert str(refused.value).endswith("not complete: week4/vitals (not started), log/cm (draft)")
    subject = trial.record("01-001", "baseline", "labs").subject
    records = signatures.records_in_scope(db, subject, "casebook")
    assert signatures.unsigned_forms(db, subject.study, subject, "casebook", records) == [
        "week4/vitals (not started)", "log/cm (draft)"]
    assert db.scalar(select(Signature.id)) is None  # every refusal stored nothing
    trial.save("01-001", "week4", "vitals", {"sbp": 110, "assessed": "2026-11-30"})
    trial.save("01-001", "", "cm", {"drug": "paracetamol"}, seq=1)
    assert signatures.is_valid(db, _sign(trial, "casebook"))


def test_wrong_password_is_refused_audited_and_counts_toward_lockout(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    for _ in range(5):
        with pytest.raises(Invalid):
            _sign(trial, "form", record_id=record.id, password="not my password")
    failures = db.execute(select(audit_event.c.reason).where(
        audit_event.c.actor_name == "doc", audit_event.c.action.in_(["login_failed", "lockout"]))
        .order_by(audit_event.c.seq)).scalars().all()
    assert failures[0] == "signature: wrong password (1 of 5)" and any("locked until" in f for f in failures)
    with pytest.raises(Invalid):  # locked now, even with the right password
        _sign(trial, "form", record_id=record.id)
    assert signatures.signatures_of(db, record.subject) == []


def test_only_complete_data_and_own_records(trial, db):
    draft = trial.save("01-001", "baseline", "vitals", {"sbp": 120}, complete=False)
    with pytest.raises(Conflict):
        _sign(trial, "form", record_id=draft.id)
    other = trial.save("02-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    from ecrf.errors import NotFound
    with pytest.raises(NotFound):
        _sign(trial, "form", record_id=other.id)
    with pytest.raises(Conflict, match="no data"):
        _sign(trial, "visit", visit_key="week4")
