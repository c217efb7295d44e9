"""Appending events: inside the caller's transaction, one writer at a time, so the chain never forks.

The data change and its events commit or roll back together because ``append_many`` only ever runs
in the caller's open transaction. Writers are serialised before they read the head: on PostgreSQL by
a transaction-level advisory lock (held until the caller commits or rolls back), on SQLite by the
database write lock that ecrf's writers take with BEGIN IMMEDIATE (``ecrf.db.write_transaction``).
Even a writer that skipped the lock could not fork the chain: ``seq`` is the primary key, so the
second of two events claiming the same number fails and takes its transaction with it.
"""
import datetime as dt

from sqlalchemy import text

from audit.canonical import EVENT_COLUMNS, GENESIS, hash_values, value_text
from audit.table import audit_event

#: Key of the PostgreSQL transaction-level advisory lock that serialises appends.
ADVISORY_LOCK_KEY = 0x0EC2F_A0D17


def _now_text():
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: The head: the last event's number and hash (plain SQL, run on every save).
_HEAD_SQL = "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1"
#: Placeholders of the drivers ecrf runs on (sqlite3, psycopg), by DB-API paramstyle.
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)


def head(connection):
    """``(seq, hash)`` of the last event, or ``(0, GENESIS)`` for an empty log."""
    row = connection.exec_driver_sql(_HEAD_SQL).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def _lock(connection):
    # SQLite: the caller's transaction holds the write lock (ecrf begins writers with BEGIN
    # IMMEDIATE); PostgreSQL: this lock is held until the caller's transaction ends.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _values(event, seq, prev_hash, ts):
    """The HASHED_COLUMNS of one event, in order."""
    ctx = event.context
    return (seq, ts, event.actor_id, event.actor_name, event.actor_role, str(event.action),
            event.study, event.site, event.subject, event.visit, event.form, event.form_version,
            event.record, event.field, value_text(event.old), value_text(event.new), event.reason,
            ctx.ip[:64] if ctx.ip else None, ctx.user_agent[:400] if ctx.user_agent else None,
            ctx.channel, prev_hash)


def _insert(connection, rows):
    """Insert rows (tuples in EVENT_COLUMNS order): one executemany on the driver, without building a
    parameter dictionary per row (a save writes dozens of events)."""
    mark = _MARKS.get(connection.dialect.paramstyle)
    if mark is None:
        connection.execute(audit_event.insert(), [dict(zip(EVENT_COLUMNS, row)) for row in rows])
        return
    marks = ", ".join([mark] * len(EVENT_COLUMNS))
    connection.exec_driver_sql(f"INSERT INTO audit_event ({_COLUMN_LIST}) VALUES ({marks})", rows)


def append_many(connection, events):
    """Append ``events`` in order inside the open transaction of ``connection``; return the new head
    ``(seq, hash)`` (the head before when ``events`` is empty)."""
    if not connection.in_transaction():
        raise RuntimeError("audit.append must run inside the caller's transaction")
    events = list(events)
    if not events:
        return head(connection)
    _lock(connection)
    seq, prev = head(connection)
    ts = _now_text()
    rows = []
    for event in events:
        seq += 1
        values = _values(event, seq, prev, ts)
        prev = hash_values(values)
        rows.append((*values, prev))
    _insert(connection, rows)
    return seq, prev


def append(connection, event):
    """Append one event; see ``append_many``."""
    return append_many(connection, [event])
