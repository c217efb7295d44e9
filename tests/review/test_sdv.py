"""Source data verification: whole forms or single fields; a changed value clears its verification."""
import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.errors import Conflict, Invalid
from ecrf.review import sdv, status


def test_verify_a_form_then_a_change_clears_only_that_field(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "dbp": 80, "assessed": "2026-11-02"})
    mon = trial.actor("mon", "monitor")
    assert sdv.verify(db, mon, "revw", record.id) == ["/assessed", "/dbp", "/sbp"]
    assert sdv.verify(db, mon, "revw", record.id) == []  # already verified: nothing new
    assert status.record_status(db, record) == "verified"
    trial.save("01-001", "baseline", "vitals", {"sbp": 130, "dbp": 80, "assessed": "2026-11-02"},
               reason="transcription error")
    states = sdv.field_states(db, [record])[record.id]
    assert states == {"/sbp": "changed", "/dbp": "verified", "/assessed": "verified"}
    assert status.record_status(db, record) == "complete"
    events = db.execute(select(audit_event.c.field, audit_event.c.old_value, audit_event.c.new_value,
                               audit_event.c.reason).where(audit_event.c.action == "verify",
                                                           audit_event.c.record == record.id)
                        .order_by(audit_event.c.seq)).all()
    assert [e.field for e in events] == ["/assessed", "/dbp", "/sbp", "/sbp"]
    assert events[-1].new_value is None and events[-1].reason == "value changed after verification"
    assert sdv.verify(db, mon, "revw", record.id, ["/sbp"]) == ["/sbp"]
    assert status.record_status(db, record) == "verified"


def test_single_fields_and_bad_field_names(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    mon = trial.actor("mon", "monitor")
    assert sdv.verify(db, mon, "revw", record.id, ["/sbp"]) == ["/sbp"]
    assert status.record_status(db, record) == "complete"  # /assessed not verified yet
    with pytest.raises(Invalid) as bad:
        sdv.verify(db, mon, "revw", record.id, ["/nosuch", "/../x"])
    assert {p for p, _ in bad.value.errors} == {"/nosuch", "/../x"}
    with pytest.raises(Invalid):
        sdv.verify(db, mon, "revw", record.id, ["/dbp"])  # no value
    empty = trial.save("01-001", "week4", "vitals", {}, complete=False)
    with pytest.raises(Conflict):
        sdv.verify(db, mon, "revw", empty.id)


def test_a_value_added_later_makes_the_form_unverified_again(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    sdv.verify(db, trial.actor("mon", "monitor"), "revw", record.id)
    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "dbp": 70, "assessed": "2026-11-02"})
    assert status.record_status(db, record) == "complete"
