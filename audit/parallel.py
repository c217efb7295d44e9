"""Verifying the chain with more than one process: ranges of events checked by workers.

Single-threaded, verify costs about as much as reading every row and hashing it, and the replay adds
a third. With ``verify_chain(..., jobs=N)`` the log up to the head (read once, at the start, in the
caller's transaction) is cut into ranges of ``chunk`` events, and:

* ``N - 1`` worker processes, each on its own connection, are handed ranges from the front, one at
  a time, and check each one's sequence, links and hashes;
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

Workers are plain ``python -P -c`` processes that import only ``audit`` (not the caller's main module,
as multiprocessing's spawn does), spoken to in JSON lines over their stdin and stdout by one thread
each in this process: the database URL goes over the pipe, never on a command line.
"""
import dataclasses
import json
import queue
import re
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from audit.canonical import GENESIS
from audit.verify import (SELECT_ALL, ChainProblem, VerifyResult, join_range, past_checkpoint, scan_batches,
                          select_sql, walk_range)

#: Seconds to wait for a worker to leave once told to stop, before it is killed.
_GRACE = 5
#: A worker's program: audit imported from where this process imported it (a source checkout or
#: site-packages), and never from the working directory (-P), where a folder named "audit" may be.
_WORKER = f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r}); from audit.parallel import work; work()"


def verify_in_ranges(connection, head, against, on_event, jobs, needs, chunk):
    """``verify_chain`` of events 1 to ``head`` with ``jobs - 1`` workers; see the module docstring."""
    ranges = _Ranges(-(-head // chunk))
    config = {"url": connection.engine.url.render_as_string(hide_password=False),
              "snapshot": _export_snapshot(connection), "head": head, "chunk": chunk, "against": against}
    workers = []
    verdicts = _Verdicts(ranges, jobs - 1)
    failed = None  # (the last event this process got to, the exception) when handling a range failed
    replay_sql = f"{select_sql(needs)} WHERE seq > {{lo}} AND seq <= {{hi}} ORDER BY seq"
    try:
        for _ in range(1, jobs):
            workers.append(_Worker(ranges, config))
        for index in range(ranges.count):
            verdicts.take(block=False)
            if ranges.stop < index:
                break
            lo, hi = index * chunk, min(index * chunk + chunk, head)
            if _claim(ranges, index):
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
            index = ranges.count
        ranges.lower_stop(index)
        verdicts.take(block=True)
    finally:
        ranges.lower_stop(-1)
        for worker in workers:
            worker.close()
    problem = verdicts.result
    if failed is not None and (problem is None or problem.problem.seq > failed[0]):
        raise failed[1]
    if problem is not None:
        return problem
    if verdicts.next != ranges.count:
        raise RuntimeError(f"audit verify: events after {verdicts.head[0]} were not checked")
    seq, digest = verdicts.head
    return past_checkpoint(VerifyResult(seq, seq, digest), against)


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


class _Ranges:
    """Who checks which range, shared by this process's walk and the threads serving the workers:
    ``taken``, the first range nobody has taken, and ``stop``, the first known to hold a problem
    (none after it matter). ``results`` carries the workers' verdicts to the walk."""

    def __init__(self, count):
        self.count, self.taken, self.stop = count, 0, count
        self.lock = threading.Lock()
        self.results = queue.Queue()

    def next_for_worker(self):
        with self.lock:
            if self.taken >= self.count or self.taken > self.stop:
                return None
            self.taken += 1
            return self.taken - 1

    def lower_stop(self, index):
        with self.lock:
            self.stop = min(self.stop, index)


def _claim(ranges, index):
    """Whether this process checks range ``index`` itself: it does when no worker has taken it yet
    (workers are handed ranges in order, so then none has reached it)."""
    with ranges.lock:
        if ranges.taken != index:
            return False
        ranges.taken = index + 1
        return True


class _Verdicts:
    """The ranges' results, joined in order as they arrive: ``head`` ``(seq, hash)`` verified so far,
    or ``result`` naming the first problem. Holds only results that arrived ahead of a missing one."""

    def __init__(self, ranges, workers):
        self.ranges, self.running = ranges, workers
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
        """Take the workers' verdicts: those already in, or (``block``) until every worker is done."""
        while self.running:
            try:
                message = self.ranges.results.get(block=block)
            except queue.Empty:
                return
            if message is None:  # a worker is done
                self.running -= 1
            elif isinstance(message, BaseException):
                raise RuntimeError(f"audit verify: a worker failed: {message}") from message
            else:
                self.add(*message)


class _Worker:
    """One worker process and the thread in this process that hands it ranges and takes its verdicts."""

    def __init__(self, ranges, config):
        self.process = subprocess.Popen([sys.executable, "-P", "-c", _WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, encoding="utf-8")
        self.ranges = ranges
        self.thread = threading.Thread(target=self._serve, args=(config,), daemon=True,
                                       name="audit-verify-worker")
        self.thread.start()

    def _serve(self, config):
        ranges, process = self.ranges, self.process
        try:
            self._send(config)
            self._receive()  # connected: hand out ranges only now, the walk takes them until then
            while (index := ranges.next_for_worker()) is not None:
                self._send({"range": index})
                first_prev, result = _decode(self._receive())
                ranges.results.put((index, first_prev, result))
                if not result.ok:
                    ranges.lower_stop(index)
            process.stdin.close()
        except BaseException as exc:  # noqa: BLE001 (handed to the walk, which raises it)
            ranges.results.put(exc)
        finally:
            ranges.results.put(None)

    def _send(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def _receive(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker process ended (exit code {self.process.wait()})")
        message = json.loads(line)
        if "error" in message:
            raise RuntimeError(message["error"])
        return message

    def close(self):
        """Wait for the worker to leave (it does once told there is nothing left), else end it."""
        try:
            self.process.wait(_GRACE if not self.thread.is_alive() else 0.1)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.thread.join()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:  # a pipe the dead worker left half-written
                pass


def _export_snapshot(connection):
    """PostgreSQL: this transaction's snapshot, for the workers to read exactly what it reads."""
    if connection.dialect.name != "postgresql":
        return None
    return connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()


def _encode(first_prev, result):
    return {"first_prev": first_prev, "result": dataclasses.asdict(result)}


def _decode(message):
    result = dict(message["result"])
    if result["problem"] is not None:
        result["problem"] = ChainProblem(**result["problem"])
    return message["first_prev"], VerifyResult(**result)


def work():
    """A worker's main: connect as told on stdin, say so, then check each range it is handed and
    answer with the verdict, until stdin closes. Errors are answered too, as ``{"error": ...}``."""
    replies, sys.stdout = sys.stdout, sys.stderr  # nothing else may write to the reply pipe

    def reply(message):
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    try:
        config = json.loads(sys.stdin.readline())
        against = tuple(config["against"]) if config["against"] is not None else None
        head, chunk = config["head"], config["chunk"]
        engine = create_engine(config["url"], poolclass=NullPool)
        with engine.connect() as connection:
            snapshot = config["snapshot"]
            if snapshot is not None:
                if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
                    raise ValueError(f"unexpected snapshot id {snapshot!r}")
                connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            reply({"ready": True})
            for line in sys.stdin:
                lo = json.loads(line)["range"] * chunk
                reply(_encode(*check_range(connection, lo, min(lo + chunk, head), head, against)))
        engine.dispose()
    except Exception:  # noqa: BLE001 (the parent raises it)
        reply({"error": traceback.format_exc()})
