"""Verify with a worker process (``jobs=2``) names exactly what a single pass names.

These run on a committed database (a worker reads on its own connection, which never sees a test's
rolled-back transaction), with ranges of a few events so that ``write_history`` spans several. Which
process checks which range is pinned by replacing ``audit.parallel._claim`` in this process:
"workers" leaves every range to the worker (this process replays them unchecked), "split" checks the
first half here and leaves the rest to the worker, so the join between the halves joins a range
checked here to one checked there.
"""
import pytest
from sqlalchemy import func, select, update

import audit.parallel
import audit.verify
from audit import Action, Event, ReplayState, append, audit_event, verify_chain
from audit.canonical import event_hash
from audit.replay import READS
from ecrf.audit_check import parallel_possible
from ecrf.db import make_engine
from ecrf.models import FormRecord

CHUNK = 8


@pytest.fixture
def log(committed_log, monkeypatch):
    monkeypatch.setattr(audit.verify, "CHUNK", CHUNK)
    committed_log.ranges = -(-committed_log.head // CHUNK)
    assert committed_log.ranges >= 6
    # Count the verifications that really went through the workers.
    committed_log.in_ranges = 0
    real = audit.parallel.verify_in_ranges

    def counted(*args):
        committed_log.in_ranges += 1
        return real(*args)

    monkeypatch.setattr(audit.parallel, "verify_in_ranges", counted)
    return committed_log


@pytest.fixture(params=["workers", "split"])
def mode(request, log, monkeypatch):
    """Pin which ranges this process checks itself (see the module docstring)."""
    if request.param == "workers":
        monkeypatch.setattr(audit.parallel, "_claim", lambda ranges, index: False)
        return request.param
    claim, half = audit.parallel._claim, log.ranges // 2

    def first_half(ranges, index):
        with ranges.lock:
            if ranges.taken == 0:
                ranges.taken = half  # reserved before the worker has connected
        return index < half or claim(ranges, index)

    monkeypatch.setattr(audit.parallel, "_claim", first_half)
    return request.param


def _join(log):
    """The last event of the first half, and the first event of the second."""
    last = log.ranges // 2 * CHUNK
    return last, last + 1


def _same_as_one_process(log, checkpoint=None):
    """The report with two processes, asserted equal to the single pass's."""
    expected = log.verify(1, checkpoint)
    before = log.in_ranges
    assert log.verify(2, checkpoint) == expected
    assert log.in_ranges == before + 1
    return expected


def test_intact_log_verifies_the_same(log, mode):
    report = _same_as_one_process(log)
    assert report.ok, report.problem
    assert report.events == log.head and report.records == 6 and report.subjects == 2


def test_intact_log_with_ranges_taken_as_they_come(log):
    report = log.verify(2)
    assert report.ok, report.problem
    assert report == log.verify(1) and log.in_ranges == 1


def _alter(seq):
    return lambda attacker: attacker.update(seq, reason="nothing to see")


def _rehash(seq):
    def change(attacker):
        row = attacker.row(seq)
        row["reason"] = "nothing to see"
        attacker.update(seq, reason=row["reason"], hash=event_hash(row))
    return change


def _delete(seq):
    return lambda attacker: attacker.delete(seq)


def _swap(seq):
    return lambda attacker: attacker.swap(seq, seq + 1)


_MESSAGES = {
    _alter: "event {seq} was altered",
    _rehash: "event {next} does not link to event {seq}",
    _delete: "event {seq} is missing (next stored event is {next})",
    _swap: "event {seq} does not link to event {prev}",
}


@pytest.mark.parametrize(("how", "where"), [
    (_alter, "second range"), (_alter, "join, last"), (_alter, "join, first"), (_alter, "head"),
    # The chain breaks exactly at the join: the second half's first event no longer links.
    (_rehash, "join, last"), (_rehash, "second range"),
    (_delete, "second range"), (_delete, "join, last"), (_delete, "join, first"), (_delete, "head"),
    (_swap, "join, last"), (_swap, "join, first"),
], ids=lambda value: getattr(value, "__name__", value))
def test_tampered_event_is_named_as_in_one_process(log, mode, how, where):
    last, first = _join(log)
    seq = {"second range": CHUNK + 3, "join, last": last, "join, first": first, "head": log.head}[where]
    if seq == log.head and how is not _alter:
        seq -= 1  # these change the event after it too
    log.tamper(how(seq))
    report = _same_as_one_process(log)
    assert _MESSAGES[how].format(seq=seq, next=seq + 1, prev=seq - 1) in report.problem


def test_value_the_replay_cannot_read_is_named_not_raised(log, mode):
    """This process replays a worker's range before the worker's verdict: an event tampered into
    something the replay cannot apply must still be reported as altered, as in one pass."""
    with log.engine.connect() as conn:
        seq = conn.scalar(select(func.max(audit_event.c.seq)).where(
            audit_event.c.action == str(Action.UPDATE), audit_event.c.new_value.is_not(None)))
    assert seq > log.ranges // 2 * CHUNK  # in the worker's half
    log.tamper(lambda attacker: attacker.update(seq, new_value="{"))
    report = _same_as_one_process(log)
    assert report.bad_event == seq and f"event {seq} was altered" in report.problem


def test_record_changed_behind_the_logs_back(log, mode):
    with log.engine.begin() as conn:
        conn.execute(update(FormRecord.__table__).where(FormRecord.form_key == "vitals")
                     .values(data={"sbp": 180}))
    report = _same_as_one_process(log)
    assert "stored data differs from the log" in report.problem


# --- checkpoints -------------------------------------------------------------------------------------

@pytest.mark.parametrize("at", ["join, last", "join, first", "head"])
def test_checkpoints_are_checked_in_every_range(log, mode, at):
    last, first = _join(log)
    seq = {"join, last": last, "join, first": first, "head": log.head}[at]
    assert _same_as_one_process(log, (seq, log.hash_of(seq))).ok
    report = _same_as_one_process(log, (seq, "0" * 64))
    assert report.bad_event == seq and "differs from the checkpoint" in report.problem


def test_rewritten_history_fails_its_checkpoint(log, mode):
    """History rewritten from the join on, every hash recomputed: only the checkpoint shows it."""
    head = log.head
    checkpoint = (head, log.hash_of(head))
    _, first = _join(log)

    def rewrite(attacker):
        prev = attacker.row(first - 1)["hash"]
        for seq in range(first, head + 1):
            row = attacker.row(seq)
            if seq == first:
                row["reason"] = "rewritten"
            row["prev_hash"] = prev
            row["hash"] = prev = event_hash(row)
            attacker.update(seq, reason=row["reason"], prev_hash=row["prev_hash"], hash=row["hash"])
        attacker.restore_triggers()

    log.tamper(rewrite)
    assert _same_as_one_process(log).ok  # the chain alone cannot tell
    report = _same_as_one_process(log, checkpoint)
    assert report.bad_event == head and f"event {head} differs from the checkpoint" in report.problem


def test_checkpoint_beyond_the_end(log, mode):
    report = _same_as_one_process(log, (log.head + 3, "a" * 64))
    assert f"the log ends at event {log.head}, before the checkpoint {log.head + 3}" in report.problem


# --- what a worker cannot see ------------------------------------------------------------------------

def test_uncommitted_events_are_an_error_not_a_verdict(log, monkeypatch):
    monkeypatch.setattr(audit.parallel, "_claim", lambda ranges, index: False)
    with log.engine.connect() as conn, conn.begin():
        for n in range(CHUNK):
            append(conn, Event(Action.SUBJECT_STATE, study="audit-trial", subject="01-001", new=f"s{n}"))
        with pytest.raises(RuntimeError, match="not visible"):
            verify_chain(conn, on_event=ReplayState().apply, jobs=2, needs=READS)


def test_only_databases_other_connections_read_alike_are_verified_in_parallel(log, connection):
    assert parallel_possible(log.engine)
    assert not parallel_possible(connection)  # a test's transaction: other connections see none of it
    assert not parallel_possible(make_engine("sqlite://"))
    assert not parallel_possible(make_engine("sqlite:///:memory:"))


def test_cli_jobs(log):
    from click.testing import CliRunner

    from ecrf.cli import Context, main
    from ecrf.db import Database

    outputs = []
    for jobs in ("1", "2"):
        ctx = Context()
        ctx._db = Database(log.engine)
        result = CliRunner().invoke(main, ["audit", "verify", "--jobs", jobs], obj=ctx, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0] == outputs[1] and "audit log intact" in outputs[0]
    refused = CliRunner().invoke(main, ["audit", "verify", "--jobs", "0"], obj=Context())
    assert refused.exit_code == 2 and "--jobs" in refused.output


def test_a_worker_that_dies_is_an_error_not_a_hang(log, monkeypatch):
    monkeypatch.setattr(audit.parallel, "_claim", lambda ranges, index: False)
    monkeypatch.setattr(audit.parallel, "_WORKER", "import sys; sys.stdin.readline(); sys.exit(3)")
    with pytest.raises(RuntimeError, match="exit code 3"):
        log.verify(2)


def test_the_cli_says_in_one_line_when_a_worker_fails(log, monkeypatch):
    from click.testing import CliRunner

    from ecrf.cli import Context, main
    from ecrf.db import Database

    monkeypatch.setattr(audit.parallel, "_claim", lambda ranges, index: False)
    monkeypatch.setattr(audit.parallel, "_WORKER", "import sys; sys.stdin.readline(); sys.exit(3)")
    ctx = Context()
    ctx._db = Database(log.engine)
    result = CliRunner().invoke(main, ["audit", "verify", "--jobs", "2"], obj=ctx)
    assert result.exit_code == 1 and "could not finish" in result.output and "--jobs 1" in result.output
    assert "Traceback" not in result.output
