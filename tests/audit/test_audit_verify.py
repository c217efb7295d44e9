"""``ecrf audit verify``: an intact chain whose replay reproduces the data passes; every kind of
tampering is caught and the first bad event (or unexplained record) is named, with exit code 1."""
import re

import pytest
from sqlalchemy import func, select, update

from audit import Action, audit_event
from audit.canonical import GENESIS, HASHED_COLUMNS, event_hash
from ecrf.audit_check import first_difference, verify_database
from ecrf.models import FormRecord, Subject


def _verify(cli, *args):
    result = cli("audit", "verify", *args)
    return result.exit_code, result.output


def _record_id(db, subject, visit, form, seq=1):
    return db.scalar(select(FormRecord.id).join(Subject).where(
        Subject.key == subject, FormRecord.visit_key == visit, FormRecord.form_key == form,
        FormRecord.seq == seq))


def test_real_saves_replay_exactly(db, history, cli):
    report = verify_database(db)
    assert report.ok, report.problem
    assert report.records == 6 and report.subjects == 2
    code, output = _verify(cli)
    assert code == 0, output
    assert re.search(r"audit log intact: \d+ events, head \d+:[0-9a-f]{64}; replay reproduces 6 form "
                     r"records, 2 subjects and 0 signatures; 0 SAE reports and 0 receipts are as issued; "
                     r"\d+ append-only triggers in place", output)


def test_empty_log_verifies(cli):
    code, output = _verify(cli)
    assert code == 0 and "0 events" in output


def _data_event(events, field):
    return next(e for e in events() if e.field == field and e.action == Action.UPDATE)


def test_altered_event_is_named(history, attacker, events, cli):
    target = _data_event(events, "/sbp")
    attacker.drop_triggers()
    attacker.update(target.seq, new_value="999")
    code, output = _verify(cli)
    assert code == 1
    assert f"event {target.seq} was altered" in output


def test_altered_event_with_its_hash_recomputed_breaks_the_next_link(history, attacker, events, cli):
    target = _data_event(events, "/sbp")
    row = attacker.row(target.seq)
    row["reason"] = "nothing to see"
    attacker.drop_triggers()
    attacker.update(target.seq, reason=row["reason"], hash=event_hash(row))
    code, output = _verify(cli)
    assert code == 1
    assert f"event {target.seq + 1} does not link to event {target.seq}" in output


def test_deleted_event_is_named(history, attacker, events, cli):
    target = events()[5]
    attacker.drop_triggers()
    attacker.delete(target.seq)
    code, output = _verify(cli)
    assert code == 1
    assert f"event {target.seq} is missing" in output


def test_deleted_last_event_is_caught_by_the_replay(history, attacker, events, db, cli):
    last = events()[-1]
    assert last.action == Action.WITHDRAW
    attacker.drop_triggers()
    attacker.delete(last.seq)
    code, output = _verify(cli)
    assert code == 1
    assert "subject audit-trial 01-001: stored state 'withdrawn' differs from the log's 'enrolled'" in output


def test_reordered_events_are_named(history, attacker, events, cli):
    first, second = events()[6], events()[7]
    attacker.drop_triggers()
    attacker.swap(first.seq, second.seq)
    code, output = _verify(cli)
    assert code == 1
    assert f"event {first.seq} does not link to event {first.seq - 1}" in output


def test_record_changed_behind_the_logs_back_is_named(history, db, connection, cli):
    record_id = _record_id(db, "01-001", "baseline", "vitals")
    stored = db.get(FormRecord, record_id).data
    connection.execute(update(FormRecord.__table__).where(FormRecord.id == record_id)
                       .values(data=dict(stored, sbp=180)))
    code, output = _verify(cli)
    assert code == 1
    assert (f"form record {record_id} (audit-trial 01-001 baseline vitals #1): stored data differs from "
            "the log at /sbp") in output


@pytest.mark.parametrize("change", [
    {"status": "locked"},
    {"missing": {"/sbp": {"flag": "not_done"}}},
    {"visit_key": "week4"},
])
def test_other_record_changes_behind_the_logs_back_are_named(history, db, connection, cli, change):
    record_id = _record_id(db, "01-001", "baseline", "vitals")
    connection.execute(update(FormRecord.__table__).where(FormRecord.id == record_id).values(**change))
    code, output = _verify(cli)
    assert code == 1 and f"form record {record_id} " in output


def test_repeating_group_changed_behind_the_logs_back(history, db, connection, cli):
    record_id = _record_id(db, "01-001", "", "ae")
    connection.execute(update(FormRecord.__table__).where(FormRecord.id == record_id)
                       .values(data={"term": "Headache", "grade": True}))
    code, output = _verify(cli)
    assert code == 1 and "differs from the log at /grade" in output


def test_subject_changed_behind_the_logs_back(history, connection, cli):
    connection.execute(update(Subject.__table__).where(Subject.key == "02-001").values(state="enrolled"))
    code, output = _verify(cli)
    assert code == 1
    assert "subject audit-trial 02-001: stored state 'enrolled' differs from the log's 'screen_failed'" in output


def test_subject_moved_to_another_site_behind_the_logs_back(history, db, connection, cli):
    other_site = db.scalar(select(Subject.site_id).where(Subject.key == "02-001"))
    connection.execute(update(Subject.__table__).where(Subject.key == "01-001").values(site_id=other_site))
    code, output = _verify(cli)
    # Its records are the first things the log no longer explains.
    assert code == 1 and "is filed as audit-trial/02/01-001/screening/ie but the log has it as " \
                         "audit-trial/01/01-001/screening/ie" in output


def test_record_deleted_behind_the_logs_back(history, db, connection, cli):
    record_id = _record_id(db, "01-001", "", "ae", seq=2)
    connection.execute(FormRecord.__table__.delete().where(FormRecord.id == record_id))
    code, output = _verify(cli)
    assert code == 1 and f"form record {record_id} (audit-trial 01-001 ae) is in the log" in output


def test_record_inserted_behind_the_logs_back(history, db, connection, cli):
    template = db.get(FormRecord, _record_id(db, "01-001", "", "ae"))
    connection.execute(FormRecord.__table__.insert().values(
        subject_id=template.subject_id, visit_key="", form_key="ae", seq=9,
        form_version_id=template.form_version_id, data={"term": "Invented"}, missing={}, status="draft",
        version=1, created_at=template.created_at, updated_at=template.updated_at))
    code, output = _verify(cli)
    assert code == 1 and "(audit-trial 01-001 log ae #9) has no events in the log" in output


# --- checkpoints -------------------------------------------------------------------------------------

def test_checkpoint_then_more_events_still_verifies_against_it(history, cli):
    checkpoint = cli("audit", "checkpoint").output.strip()
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", checkpoint)
    history.save("01-001", "week4", "vitals", {"sbp": 130})
    code, output = _verify(cli, "--against", checkpoint)
    assert code == 0, output


def test_rewritten_history_passes_the_chain_but_not_the_checkpoint(history, attacker, events, cli):
    """An attacker who rewrites an event and recomputes every hash after it leaves a consistent chain;
    only a head kept outside the system shows it."""
    checkpoint = cli("audit", "checkpoint").output.strip()
    target = next(e for e in events() if e.action == Action.WITHDRAW)  # change a reason only
    attacker.drop_triggers()
    prev = attacker.row(target.seq - 1)["hash"]
    for seq in range(target.seq, events()[-1].seq + 1):
        row = attacker.row(seq)
        if seq == target.seq:
            row["reason"] = "protocol deviation"
        row["prev_hash"] = prev
        row["hash"] = event_hash(row)
        attacker.update(seq, reason=row["reason"], prev_hash=row["prev_hash"], hash=row["hash"])
        prev = row["hash"]
    attacker.restore_triggers()
    assert _verify(cli)[0] == 0  # the chain alone cannot tell
    code, output = _verify(cli, "--against", checkpoint)
    assert code == 1
    assert f"event {target.seq} differs from the checkpoint" in output


def test_checkpoint_beyond_the_end_means_events_were_removed(history, cli, events):
    head = events()[-1]
    code, output = _verify(cli, "--against", f"{head.seq + 5}:{'a' * 64}")
    assert code == 1 and f"the log ends at event {head.seq}, before the checkpoint {head.seq + 5}" in output


def test_checkpoint_of_the_empty_log(cli, trial):
    assert _verify(cli, "--against", f"0:{GENESIS}")[0] == 0
    assert _verify(cli, "--against", f"0:{'1' * 64}")[0] == 1


@pytest.mark.parametrize("bad", ["12", "x:" + "a" * 64, "3:abc", "3:" + "g" * 64])
def test_malformed_checkpoint_is_a_user_error(cli, bad):
    code, output = _verify(cli, "--against", bad)
    assert code == 1 and "SEQ:HASH" in output and "Traceback" not in output


def test_every_event_carries_what_the_issue_asks(history, events):
    update_event = _data_event(events, "/sbp")
    assert update_event.actor_name and update_event.channel == "cli"
    assert (update_event.study, update_event.site, update_event.subject, update_event.visit,
            update_event.form) == ("audit-trial", "01", "01-001", "baseline", "vitals")
    assert update_event.form_version.startswith("vitals@")
    assert (update_event.old_value, update_event.new_value) == ("120", "125")
    assert update_event.reason == "transcription error"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", update_event.ts)
    assert set(HASHED_COLUMNS) <= set(update_event._mapping)


def test_log_is_gap_free(history, db):
    count, low, high = db.execute(select(func.count(), func.min(audit_event.c.seq),
                                         func.max(audit_event.c.seq))).one()
    assert (low, high) == (1, count)


def test_first_difference_is_strict_about_json_types():
    assert first_difference({"a": 1}, {"a": 1.0}) is None
    assert first_difference({"a": 1}, {"a": True}) == "/a"
    assert first_difference({"a": [{"b": "x"}]}, {"a": [{"b": "y"}]}) == "/a/0/b"
    assert first_difference({"a~/b": 1}, {}) == "/a~0~1b"
    assert first_difference([1, 2], [1]) == ""
