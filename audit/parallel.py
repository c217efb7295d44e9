"""Verifying the chain with more than one process: ranges of events checked by workers.

Single-threaded, verify costs about as much as reading every row and hashing it, and the replay adds
a third. With ``verify_chain(..., jobs=N)`` the log up to the head (read once, at the start, in the
caller's transaction) is cut into ranges of ``chunk`` events, and:

* ``N - 1`` worker processes (spawned, each on its own connection) take ranges from the front, one
  at a time, and check each one's sequence, links and hashes;
* this process walks every range in order for the replay: a range a worker has taken is read with
  only the columns the replay needs (far cheaper than whole rows) and replayed unchecked; a range no
  worker has taken yet it takes itself, and checks and replays in one pass. So the work balances
  itself, whatever reading, hashing and replaying cost on a given database and machine.

The ranges' results are joined in order (the first event of each range must link to the last of the
range before), so the first bad event in sequence order is the one named, as in a single pass. An
error in this process while it handles a range (a replay that cannot apply a tampered event) is
raised unless the chain is already broken at or before that event, as a single pass would do.

What makes this sound: the rows up to the head are immutable (the triggers forbid UPDATE and DELETE)
and appends only add rows after it, so a worker reading ``seq <= head`` on another connection reads
the rows this process reads; on PostgreSQL the workers also import this transaction's snapshot. A
worker cannot see what is not committed: a range that ends early (events not visible to the worker)
is an error, never a verdict, and callers opt in only when everything to verify is committed.
"""
import multiprocessing
import queue
import re
import traceback

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from audit.canonical import GENESIS
from audit.verify import (SELECT_ALL, VerifyResult, join_range, past_checkpoint, scan_batches, select_sql,
                          walk_range)

#: Seconds between checks that the workers are still alive while waiting for their results.
_POLL = 1.0


def verify_in_ranges(connection, head, against, on_event, jobs, needs, chunk):
    """``verify_chain`` of events 1 to ``head`` with ``jobs - 1`` workers; see the module docstring."""
    ranges = -(-head // chunk)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no connection inherited
    taken = context.Value("q", 0)  # the first range nobody has taken
    stop = context.Value("q", ranges)  # the first range known to hold a problem: none after it matter
    messages = context.Queue()
    args = (connection.engine.url.render_as_string(hide_password=False), _export_snapshot(connection),
            head, chunk, against, taken, stop, messages)
    workers = [context.Process(target=_work, args=args, daemon=True, name=f"audit-verify-{n}")
               for n in range(1, jobs)]
    for worker in workers:
        worker.start()
    verdicts = _Verdicts(messages, workers)
    failed = None  # (the last event this process got to, the exception) when handling a range failed
    replay_sql = f"{select_sql(needs)} WHERE seq > {{lo}} AND seq <= {{hi}} ORDER BY seq"
    try:
        for index in range(ranges):
            verdicts.take(block=False)
            if _value(stop) < index:
                break
            lo, hi = index * chunk, min(index * chunk + chunk, head)
            if _claim(taken, index):
                try:
                    first_prev, result = check_range(connection, lo, hi, head, against, on_event)
                except Exception as exc:  # noqa: BLE001 (raised below unless the chain broke before)
                    failed = (lo, exc)
                    break
                verdicts.add(index, first_prev, result)
                if not result.ok:
                    break
            elif on_event is not None:
                row = None
                try:
                    for rows in scan_batches(connection, sql=replay_sql.format(lo=lo, hi=hi)):
                        for row in rows:  # noqa: B007 (the row that failed is read below)
                            on_event(row)
                except Exception as exc:  # noqa: BLE001 (the worker's verdict on the range decides)
                    failed = (lo if row is None else row[0], exc)
                    break
        else:
            index = ranges
        _lower(stop, index)
        verdicts.take(block=True)
    finally:
        _lower(stop, -1)
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.terminate()
    problem = verdicts.result
    if failed is not None and (problem is None or problem.problem.seq > failed[0]):
        raise failed[1]
    if problem is not None:
        return problem
    if verdicts.next != ranges:
        raise RuntimeError(f"audit verify: events after {verdicts.head[0]} were not checked")
    seq, digest = verdicts.head
    return past_checkpoint(VerifyResult(seq, seq, digest), against)


def _claim(taken, index):
    """Whether this process checks range ``index`` itself: it does when no worker has taken it yet
    (workers take ranges in order, so then no worker has reached it)."""
    with taken.get_lock():
        if taken.value != index:
            return False
        taken.value = index + 1
        return True


def check_range(connection, lo, hi, head, against=None, on_event=None):
    """Check events ``lo + 1`` to ``hi`` on their own (``walk_range``): ``(first_prev, result)``.

    ``hi - lo`` rows are read from those after ``lo`` up to the head, so a gap shows as in a single
    pass, naming the next stored event even when it lies beyond ``hi``. A range that ends early with
    no gap is events this connection cannot see (not committed): an error, not a verdict.
    """
    sql = f"{SELECT_ALL} WHERE seq > {lo} AND seq <= {head} ORDER BY seq LIMIT {hi - lo}"
    batches = scan_batches(connection, sql=sql)
    try:
        result, first_prev = walk_range(batches, lo, None, against, on_event)
    finally:
        batches.close()
    if result.ok and result.head_seq != hi:
        raise RuntimeError(f"audit verify: events {result.head_seq + 1} to {hi} are not visible on "
                           "this connection (not committed?); verify them in one process")
    return first_prev, result


class _Verdicts:
    """The ranges' results, joined in order as they arrive: ``head`` ``(seq, hash)`` verified so far,
    or ``result`` naming the first problem. Holds only results that arrived ahead of a missing one."""

    def __init__(self, messages, workers):
        self.messages, self.workers, self.done = messages, workers, 0
        self.head, self.next, self.pending, self.result = (0, GENESIS), 0, {}, None

    def add(self, index, first_prev, result):
        self.pending[index] = (first_prev, result)
        while self.result is None and self.next in self.pending:
            joined = join_range(self.head, *self.pending.pop(self.next))
            if not joined.ok:
                self.result = joined
                self.pending.clear()
                return
            self.head = (joined.head_seq, joined.head_hash)
            self.next += 1

    def take(self, block):
        """Take the workers' messages: those already sent, or (``block``) until every worker is done."""
        while self.done < len(self.workers):
            try:
                message = self.messages.get(timeout=_POLL) if block else self.messages.get_nowait()
            except queue.Empty:
                if not block:
                    return
                if not any(worker.is_alive() for worker in self.workers):
                    raise RuntimeError("audit verify: a worker process ended without reporting") from None
                continue
            if message[0] == "range":
                self.add(*message[1:])
            elif message[0] == "error":
                raise RuntimeError(f"audit verify: a worker process failed:\n{message[1]}")
            else:
                self.done += 1


def _value(shared):
    with shared.get_lock():
        return shared.value


def _lower(shared, value):
    with shared.get_lock():
        shared.value = min(shared.value, value)


def _export_snapshot(connection):
    """PostgreSQL: this transaction's snapshot, for the workers to read exactly what it reads."""
    if connection.dialect.name != "postgresql":
        return None
    return connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()


def _work(url, snapshot, head, chunk, against, taken, stop, messages):
    """A worker: take ranges from the front and check them until none are left (or past a problem)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if snapshot is not None:
                if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
                    raise ValueError(f"unexpected snapshot id {snapshot!r}")
                connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            while True:
                with taken.get_lock():
                    index = taken.value
                    if index * chunk >= head or index > _value(stop):
                        break
                    taken.value = index + 1
                lo = index * chunk
                first_prev, result = check_range(connection, lo, min(lo + chunk, head), head, against)
                messages.put(("range", index, first_prev, result))
                if not result.ok:
                    _lower(stop, index)
        messages.put(("done",))
    except BaseException:  # noqa: BLE001 (sent to the parent, which raises it)
        messages.put(("error", traceback.format_exc()))
    finally:
        engine.dispose()
