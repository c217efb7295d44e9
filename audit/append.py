"""Appending events: inside the caller's transaction, one writer at a time, so the chain never forks.

The data change and its events commit or roll back together because ``append_many`` only ever runs
in the caller's open transaction. Writers are serialised before they read the head: on PostgreSQL by
a transaction-level advisory lock (held until the caller commits or rolls back), on SQLite by the
database write lock that ecrf's writers take with BEGIN IMMEDIATE (``ecrf.db.write_transaction``).
Even a writer that skipped the lock could not fork the chain: ``seq`` is the primary key, so the
second of two events claiming the same number fails and takes its transaction with it.
"""
import datetime as dt

from sqlalchemy import select, text

from audit.canonical import GENESIS, event_hash, value_text
from audit.table import audit_event

#: Key of the PostgreSQL transaction-level advisory lock that serialises appends.
ADVISORY_LOCK_KEY = 0x0EC2F_A0D17


def _now_text():
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def head(connection):
    """``(seq, hash)`` of the last event, or ``(0, GENESIS)`` for an empty log."""
    row = connection.execute(
        select(audit_event.c.seq, audit_event.c.hash).order_by(audit_event.c.seq.desc()).limit(1)
    ).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def _lock(connection):
    # SQLite: the caller's transaction holds the write lock (ecrf begins writers with BEGIN
    # IMMEDIATE); PostgreSQL: this lock is held until the caller's transaction ends.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _row(event, seq, prev_hash, ts):
    ctx = event.context
    row = {
        "seq": seq, "ts": ts,
        "actor_id": event.actor_id, "actor_name": event.actor_name, "actor_role": event.actor_role,
        "action": str(event.action), "study": event.study, "site": event.site,
        "subject": event.subject, "visit": event.visit, "form": event.form,
        "form_version": event.form_version, "record": event.record, "field": event.field,
        "old_value": value_text(event.old), "new_value": value_text(event.new),
        "reason": event.reason, "ip": ctx.ip[:64] if ctx.ip else None,
        "user_agent": ctx.user_agent[:400] if ctx.user_agent else None,
        "channel": ctx.channel, "prev_hash": prev_hash,
    }
    row["hash"] = event_hash(row)
    return row


def append_many(connection, events):
    """Append ``events`` in order inside the open transaction of ``connection``; return their rows."""
    if not connection.in_transaction():
        raise RuntimeError("audit.append must run inside the caller's transaction")
    events = list(events)
    if not events:
        return []
    _lock(connection)
    seq, prev = head(connection)
    ts = _now_text()
    rows = []
    for event in events:
        seq += 1
        row = _row(event, seq, prev, ts)
        rows.append(row)
        prev = row["hash"]
    connection.execute(audit_event.insert(), rows)
    return rows


def append(connection, event):
    """Append one event; see ``append_many``."""
    return append_many(connection, [event])[0]
