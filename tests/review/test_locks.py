"""Locks on a form, a subject or the study: nothing changes until unlocked with a reason."""
import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.capture.service import enrol_subject
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.review import locks, queries, status


def test_form_subject_and_study_locks_block_changes_until_unlocked(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    dm = trial.actor("dm", "data_manager")
    locks.lock(db, dm, "revw", "form", record_id=record.id, reason="clean")
    assert status.record_status(db, record) == "locked"
    with pytest.raises(Conflict, match="locked"):
        trial.save("01-001", "baseline", "vitals", {"sbp": 121, "assessed": "2026-11-02"}, reason="x")
    trial.save("01-001", "baseline", "labs", {"hb": 8.0})  # another form of the subject: open
    with pytest.raises(Conflict):
        locks.lock(db, dm, "revw", "form", record_id=record.id)
    with pytest.raises(Invalid):
        locks.unlock(db, dm, "revw", "form", record_id=record.id, reason=" ")
    locks.unlock(db, dm, "revw", "form", record_id=record.id, reason="late lab correction")
    trial.save("01-001", "baseline", "vitals", {"sbp": 121, "assessed": "2026-11-02"}, reason="x")

    locks.lock(db, dm, "revw", "subject", subject_key="01-001")
    with pytest.raises(Conflict):
        trial.save("01-001", "", "cm", {"drug": "x"})  # a new log entry of a locked subject
    trial.save("02-001", "", "cm", {"drug": "x"})
    locks.unlock(db, dm, "revw", "subject", subject_key="01-001", reason="query answered")

    locks.lock(db, dm, "revw", "study", reason="database lock")
    with pytest.raises(Conflict):
        trial.save("02-001", "", "cm", {"drug": "y"})
    with pytest.raises(Conflict):
        enrol_subject(db, dm, "revw", "01", "01-002")
    with pytest.raises(Conflict):
        queries.raise_query(db, trial.actor("mon", "monitor"), "revw", record.id, "/sbp", "?")
    locks.unlock(db, dm, "revw", "study", reason="reopened for a late SAE")
    with pytest.raises(NotFound):
        locks.unlock(db, dm, "revw", "study", reason="again")
    actions = db.execute(select(audit_event.c.action, audit_event.c.reason).where(
        audit_event.c.action.in_(["lock", "unlock"])).order_by(audit_event.c.seq)).all()
    assert [a for a, _ in actions] == ["lock", "unlock", "lock", "unlock", "lock", "unlock"]
    assert actions[1].reason == "late lab correction"
    assert len(locks.lock_history(db, record.subject.study)) == 1
