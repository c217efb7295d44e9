"""Proving the chain intact: contiguous sequence, each event linked to the one before, each hash right.

One pass in sequence order with flat memory (rows are streamed in batches); the first bad event stops
the walk and is named. A checkpoint ``(seq, hash)`` kept outside the system proves more: that the
log still extends what it was then, even if someone rewrote history and recomputed every hash since.

The walk can also be split into ranges of events, each checked on its own and then joined (the first
event of a range must link to the last of the range before): ``audit.parallel`` checks ranges in
worker processes while this one feeds the replay.
"""
import dataclasses
import hashlib
import itertools

from sqlalchemy import func, select

from audit.canonical import EVENT_COLUMNS, GENESIS, HASHED_COLUMNS, row_chunks
from audit.table import audit_event

#: The columns read, in this order: the hashed ones, then the event's own hash.
COLUMNS = EVENT_COLUMNS
_PREV = HASHED_COLUMNS.index("prev_hash")
_HASH = len(HASHED_COLUMNS)
_cursor_names = itertools.count(1)
#: Events per range when the chain is checked in ranges (``verify_chain(jobs=...)``). Workers are
#: started only for a log of more than two ranges: below that, starting one costs what it saves.
CHUNK = 20_000


def select_sql(columns=COLUMNS):
    """``SELECT`` of rows in ``COLUMNS`` order from audit_event, with NULL in place of the columns not
    in ``columns`` and the trailing ones left out: a reader that needs a few columns (the replay)
    reads rows laid out as verify's, at much less cost per row."""
    last = max(COLUMNS.index(name) for name in columns)
    return f"SELECT {', '.join(n if n in columns else 'NULL' for n in COLUMNS[:last + 1])} FROM audit_event"


#: Every event, every column, without an order: ranges add their own WHERE.
SELECT_ALL = select_sql()
_SQL = f"{SELECT_ALL} ORDER BY seq"


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


def scan_batches(connection, batch=500, sql=_SQL):
    """Every stored event (or the rows of ``sql``) as a plain tuple in ``COLUMNS`` order, in sequence
    order, in lists of up to ``batch`` (flat memory).

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
        cursor.execute(sql)
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def scan_events(connection, batch=500):
    """``scan_batches``, one event at a time."""
    for rows in scan_batches(connection, batch):
        yield from rows


def head_seq(connection):
    """The last event's number (0 for an empty log), in the connection's transaction."""
    return connection.execute(select(func.max(audit_event.c.seq))).scalar() or 0


def verify_chain(connection, against=None, on_event=None, *, jobs=1, needs=COLUMNS, chunk=None):
    """Check the whole log; stop at the first bad event.

    ``against`` is an optional ``(seq, hash)`` checkpoint the log must still contain. ``on_event`` is
    called with each good event (a tuple in ``COLUMNS`` order), in order: the replay runs in the same
    single pass.

    ``jobs`` above 1 checks ranges of ``chunk`` events (default ``CHUNK``) in ``jobs - 1`` worker
    processes, each on its own connection to ``connection``'s database, while this process feeds
    ``on_event`` in order (reading only the columns in ``needs`` of the ranges a worker checks) and
    checks the ranges no worker has taken yet; see ``audit.parallel``. Workers see only what is
    committed, so the caller opts in only when everything it verifies is. The result is the same:
    the first bad event in sequence order, and ``on_event`` is never called past it when this
    process checked the event itself (past it, maybe, when a worker did: the caller must ignore the
    replayed state when the chain is broken, as a report of the broken chain does).
    """
    chunk = chunk or CHUNK
    if jobs > 1 and _empty_log_problem(against) is None:
        last = head_seq(connection)
        if last > 2 * chunk:
            from audit.parallel import verify_in_ranges

            return verify_in_ranges(connection, last, against, on_event, jobs, needs, chunk)
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
    problem = _empty_log_problem(against)
    if problem is not None:
        return problem
    result, _ = walk_range(batches, 0, GENESIS, against, on_event)
    return past_checkpoint(result, against)


def _empty_log_problem(against):
    if against is not None and against[0] == 0 and against[1] != GENESIS:
        return VerifyResult(0, 0, GENESIS, ChainProblem(
            0, f"checkpoint 0:{against[1]} is not the empty log (0:{GENESIS})"))
    return None


def past_checkpoint(result, against):
    """``result`` of a walk over the whole log, or the problem that the log ends before ``against``."""
    if result.ok and against is not None and against[0] > result.count:
        return VerifyResult(result.count, result.head_seq, result.head_hash, ChainProblem(
            against[0], f"the log ends at event {result.count}, before the checkpoint {against[0]} "
                        "(events were removed from its end)"))
    return result


def walk_range(batches, before, prev, against=None, on_event=None):
    """Walk the events after event ``before`` (whose hash is ``prev``) in ``batches``: ``(result,
    first_prev)``.

    With ``prev`` None the range is checked on its own: the first event's ``prev_hash`` is taken as
    given and returned as ``first_prev`` (None when the first event is missing) for ``join_range``
    to check against the range before. ``against`` is checked only where its event is in the range.
    """
    expected, first_prev = before + 1, None
    rows = itertools.chain.from_iterable(batches)
    if prev is None:
        first = next(rows, None)
        if first is None:
            return VerifyResult(before, before, prev), None
        if first[0] == expected:
            prev = first_prev = first[_PREV]
        rows = itertools.chain((first,), rows)
    check_seq, check_hash = against if against is not None else (None, None)
    # canonical.hash_values inlined: this loop runs once per event of the whole log.
    sha256, chunks, join, last, link = hashlib.sha256, row_chunks, "".join, _HASH, _PREV
    for row in rows:
        seq = row[0]
        if seq != expected:
            message = (f"event {expected} is missing (next stored event is {seq})" if seq > expected
                       else f"event {seq} is stored out of order or twice (expected event {expected})")
            return VerifyResult(expected - 1, expected - 1, prev, ChainProblem(expected, message)), first_prev
        if row[link] != prev:
            return VerifyResult(seq - 1, seq - 1, prev, _unlinked(seq)), first_prev
        digest = row[last]
        if sha256(join(chunks(row[:last], 0)).encode("utf-8")).hexdigest() != digest:
            return VerifyResult(seq - 1, seq - 1, prev, ChainProblem(
                seq, f"event {seq} was altered: its content no longer matches its hash")), first_prev
        if seq == check_seq and digest != check_hash:
            return VerifyResult(seq - 1, seq - 1, prev, ChainProblem(
                seq, f"event {seq} differs from the checkpoint {check_seq}:{check_hash} "
                     "(history was rewritten since the checkpoint)")), first_prev
        if on_event is not None:
            on_event(row)
        prev = digest
        expected += 1
    count = expected - 1  # events are numbered from 1 without gaps, so the last good one is the count
    return VerifyResult(count, count, prev), first_prev


def join_range(head, first_prev, result):
    """The log verified through ``head`` ``(seq, hash)``, continued by the ``walk_range`` result of
    the range after it: a VerifyResult through the end of that range, or naming the first problem."""
    seq, digest = head
    if first_prev is not None and first_prev != digest:
        return VerifyResult(seq, seq, digest, _unlinked(seq + 1))
    if result.head_seq == seq:  # the range's first event is bad (or the range is empty)
        return VerifyResult(seq, seq, digest, result.problem)
    return result


def _unlinked(seq):
    return ChainProblem(seq, f"event {seq} does not link to event {seq - 1} (rows deleted or reordered)")
