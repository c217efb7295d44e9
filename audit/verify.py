"""Proving the chain intact: contiguous sequence, each event linked to the one before, each hash right.

One pass in sequence order with flat memory (rows are streamed in batches); the first bad event stops
the walk and is named. A checkpoint ``(seq, hash)`` kept outside the system proves more: that the
log still extends what it was then, even if someone rewrote history and recomputed every hash since.
"""
import dataclasses
import hashlib
import itertools

from sqlalchemy import select

from audit.canonical import EVENT_COLUMNS, GENESIS, HASHED_COLUMNS, row_chunks
from audit.table import audit_event

#: The columns read, in this order: the hashed ones, then the event's own hash.
COLUMNS = EVENT_COLUMNS
_PREV = HASHED_COLUMNS.index("prev_hash")
_HASH = len(HASHED_COLUMNS)
_SQL = f"SELECT {', '.join(COLUMNS)} FROM audit_event ORDER BY seq"
_cursor_names = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    #: Good events walked, and the last good one (the head when the log is intact).
    count: int
    head_seq: int
    head_hash: str
    problem: ChainProblem | None = None

    @property
    def ok(self):
        return self.problem is None


def events_query():
    """Every event's columns (``COLUMNS``) in sequence order."""
    return select(*(audit_event.c[name] for name in COLUMNS)).order_by(audit_event.c.seq)


def iter_events(connection, query=None, batch=5000):
    """Stream stored events (rows with the ``COLUMNS`` as attributes, ``query`` or all of them in
    order) in flat memory on both databases: a server-side cursor on PostgreSQL, sqlite3's own
    stepping on SQLite."""
    query = events_query() if query is None else query
    # Options on the statement, not the connection: Connection.execution_options() changes the
    # connection in place, and would turn the caller's later statements into server-side cursors.
    with connection.execute(query.execution_options(stream_results=True, yield_per=batch)) as result:
        yield from result


def parse_checkpoint(text):
    """``(seq, hash)`` from ``SEQ:HASH`` as ``ecrf audit checkpoint`` prints it; ValueError if not."""
    seq, sep, digest = (text or "").strip().partition(":")
    digest = digest.lower()
    if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("a checkpoint is SEQ:HASH as printed by ecrf audit checkpoint")
    return int(seq), digest


def scan_batches(connection, batch=500):
    """Every stored event as a plain tuple in ``COLUMNS`` order, in sequence order, in lists of up to
    ``batch`` (flat memory).

    The fast path of verify: the driver's cursor directly (a server-side cursor on PostgreSQL), on
    the same database connection and so inside the caller's transaction and snapshot. Reading rows
    through SQLAlchemy's result objects cost more than hashing them.
    """
    if not connection.in_transaction():
        connection.begin()  # what executing would do; verify's reads then share one transaction
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        cursor = driver.cursor(name=f"audit_verify_{next(_cursor_names)}")
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(_SQL)
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def scan_events(connection, batch=500):
    """``scan_batches``, one event at a time."""
    for rows in scan_batches(connection, batch):
        yield from rows


def verify_chain(connection, against=None, on_event=None):
    """Check the whole log; stop at the first bad event.

    ``against`` is an optional ``(seq, hash)`` checkpoint the log must still contain. ``on_event`` is
    called with each good event (a tuple in ``COLUMNS`` order), in order: the replay runs in the same
    single pass.
    """
    batches = scan_batches(connection)
    try:
        return walk_batches(batches, against, on_event)
    finally:
        batches.close()  # closes the server-side cursor when the walk stops early


def walk(rows, against=None, on_event=None):
    """Verify ``rows`` (tuples in ``COLUMNS`` order, sequence order); see ``verify_chain``."""
    return walk_batches([rows], against, on_event)


def walk_batches(batches, against=None, on_event=None):
    """``walk`` over lists of rows (saves a generator step per event on the longest loop)."""
    expected, prev = 1, GENESIS
    check_seq, check_hash = against if against is not None else (None, None)
    if check_seq == 0 and check_hash != GENESIS:
        return VerifyResult(0, 0, GENESIS, ChainProblem(
            0, f"checkpoint 0:{check_hash} is not the empty log (0:{GENESIS})"))
    seen_checkpoint = against is None or check_seq == 0
    # canonical.hash_values inlined: this loop runs once per event of the whole log.
    sha256, chunks, join, last, link = hashlib.sha256, row_chunks, "".join, _HASH, _PREV
    for row in itertools.chain.from_iterable(batches):
        seq = row[0]
        if seq != expected:
            message = (f"event {expected} is missing (next stored event is {seq})" if seq > expected
                       else f"event {seq} is stored out of order or twice (expected event {expected})")
            return VerifyResult(expected - 1, expected - 1, prev, ChainProblem(expected, message))
        if row[link] != prev:
            return VerifyResult(seq - 1, seq - 1, prev, ChainProblem(
                seq, f"event {seq} does not link to event {seq - 1} (rows deleted or reordered)"))
        digest = row[last]
        if sha256(join(chunks(row[:last], 0)).encode("utf-8")).hexdigest() != digest:
            return VerifyResult(seq - 1, seq - 1, prev, ChainProblem(
                seq, f"event {seq} was altered: its content no longer matches its hash"))
        if seq == check_seq:
            if digest != check_hash:
                return VerifyResult(seq - 1, seq - 1, prev, ChainProblem(
                    seq, f"event {seq} differs from the checkpoint {check_seq}:{check_hash} "
                         "(history was rewritten since the checkpoint)"))
            seen_checkpoint = True
        if on_event is not None:
            on_event(row)
        prev = digest
        expected += 1
    count = expected - 1  # events are numbered from 1 without gaps, so the last good one is the count
    if not seen_checkpoint:
        return VerifyResult(count, count, prev, ChainProblem(
            check_seq, f"the log ends at event {count}, before the checkpoint {check_seq} "
                       "(events were removed from its end)"))
    return VerifyResult(count, count, prev)
