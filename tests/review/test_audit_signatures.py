"""``ecrf audit verify`` proves signatures: each matches its sign event, and the data the log held
when it was signed hashes to the signed hash."""
from sqlalchemy import text, update

from audit import ddl
from ecrf.audit_check import verify_database
from ecrf.models import Signature
from ecrf.models.append_only import declared
from ecrf.review import queries, sdv, signatures

PASSWORD = "correct horse battery"


def _signed_trial(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 190, "assessed": "2026-11-02"})
    trial.save("01-001", "baseline", "labs", {"hb": 8.1})
    doc = trial.actor("doc", "investigator")
    form = signatures.sign(db, doc, "revw", "01-001", "form", PASSWORD, record_id=record.id)
    sdv.verify(db, trial.actor("mon", "monitor"), "revw", record.id)
    queries.raise_query(db, trial.actor("mon", "monitor"), "revw", record.id, "/dbp", "missing?")
    trial.save("01-001", "baseline", "vitals", {"sbp": 150, "assessed": "2026-11-02"}, reason="typo")
    casebook = signatures.sign(db, doc, "revw", "01-001", "casebook", PASSWORD)
    return form, casebook


def test_verify_proves_every_signature_valid_or_not(trial, db):
    form, casebook = _signed_trial(trial, db)
    assert not signatures.is_valid(db, form) and signatures.is_valid(db, casebook)
    report = verify_database(db)
    assert report.ok, report.problem
    assert report.signatures == 2


def _unprotect_signatures(db):
    """Drop the signature table's append-only triggers (in the test's rolled-back transaction)."""
    for statement in ddl.drop_statements(db.get_bind().dialect.name, declared("signature"), function=False):
        db.execute(text(statement))


def test_a_tampered_signature_is_named(trial, db):
    form, _ = _signed_trial(trial, db)
    _unprotect_signatures(db)
    db.execute(update(Signature).where(Signature.id == form.id).values(printed_name="Someone Else"))
    report = verify_database(db)
    assert not report.ok and f"signature {form.id}" in report.problem and "differs from its sign event" in report.problem


def test_a_signature_over_data_the_log_never_held_is_named(trial, db):
    form, _ = _signed_trial(trial, db)
    _unprotect_signatures(db)
    # Point the stored signature (and nothing else) at a hash of other data: verify recomputes it.
    forged = signatures.content_hash([(form.record_ids[0], "vitals", {"sbp": 999}, {}, "complete")])
    db.execute(update(Signature).where(Signature.id == form.id).values(data_hash=forged))
    report = verify_database(db)
    assert not report.ok and f"signature {form.id}" in report.problem


def test_a_signature_row_without_an_event_is_named(trial, db):
    form, _ = _signed_trial(trial, db)
    db.add(Signature(study_id=form.study_id, subject_id=form.subject_id, scope="form", record_id=form.record_id,
                     signer_id=form.signer_id, printed_name="Doc", meaning="x", record_ids=form.record_ids,
                     data_hash=form.data_hash))
    db.flush()
    report = verify_database(db)
    assert not report.ok and "has no sign event in the log" in report.problem
