"""Proving the chain intact: contiguous sequence, each event linked to the one before, each hash right."""
import dataclasses

from sqlalchemy import select

from audit.canonical import GENESIS, HASHED_COLUMNS, event_hash
from audit.table import audit_event


@dataclasses.dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    count: int
    head_seq: int
    head_hash: str
    problem: ChainProblem | None = None

    @property
    def ok(self):
        return self.problem is None


def iter_events(connection, batch=5000):
    """Stream every stored event in sequence order (flat memory on both databases)."""
    columns = [audit_event.c[name] for name in HASHED_COLUMNS] + [audit_event.c.hash]
    # Options on the statement, not the connection: Connection.execution_options() changes the
    # connection in place, and would turn the caller's later statements into server-side cursors.
    with connection.execute(select(*columns).order_by(audit_event.c.seq)
                            .execution_options(stream_results=True, yield_per=batch)) as result:
        for row in result:
            yield row._mapping


def verify_chain(connection, against=None, on_event=None):
    """Check the whole log; stop at the first bad event.

    ``against`` is an optional ``(seq, hash)`` checkpoint the log must still contain. ``on_event`` is
    called with each good event (used to replay it in the same single pass).
    """
    events = iter_events(connection)
    try:
        return _walk(events, against, on_event)
    finally:
        events.close()  # closes the server-side cursor when the walk stops early


def _walk(events, against, on_event):
    expected_seq, prev = 1, GENESIS
    seen_checkpoint = against is None
    count = 0
    for row in events:
        seq = row["seq"]
        if seq != expected_seq:
            return VerifyResult(count, expected_seq - 1, prev, ChainProblem(
                expected_seq, f"event {expected_seq} is missing (next stored event is {seq})"))
        if row["prev_hash"] != prev:
            return VerifyResult(count, seq - 1, prev, ChainProblem(
                seq, f"event {seq} does not link to event {seq - 1} (rows deleted or reordered)"))
        if event_hash(row) != row["hash"]:
            return VerifyResult(count, seq - 1, prev, ChainProblem(
                seq, f"event {seq} was altered: its content no longer matches its hash"))
        if against is not None and seq == against[0]:
            if row["hash"] != against[1]:
                return VerifyResult(count, seq - 1, prev, ChainProblem(
                    seq, f"event {seq} differs from the checkpoint {against[0]}:{against[1]}"))
            seen_checkpoint = True
        if on_event is not None:
            on_event(row)
        prev = row["hash"]
        expected_seq += 1
        count += 1
    if not seen_checkpoint:
        return VerifyResult(count, expected_seq - 1, prev, ChainProblem(
            against[0], f"the log ends at {expected_seq - 1}, before the checkpoint {against[0]}"))
    return VerifyResult(count, expected_seq - 1, prev)
