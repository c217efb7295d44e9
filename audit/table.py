"""The audit_event table (SQLAlchemy Core, its own MetaData so that audit/ depends on nothing of ecrf)."""
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "pk": "pk_%(table_name)s",
})

audit_event = Table(
    "audit_event",
    metadata,
    # Assigned by append() as head + 1 under the append lock: gap-free, so a deleted row shows.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    # ISO 8601 UTC text with microseconds ("2026-11-23T08:40:00.123456Z"): hashed exactly as stored,
    # identical on SQLite and PostgreSQL, and sortable.
    Column("ts", String(32), nullable=False),
    Column("actor_id", Integer),
    Column("actor_name", String(200)),
    Column("actor_role", String(40)),
    Column("action", String(40), nullable=False),
    Column("study", String(64)),
    Column("site", String(32)),
    Column("subject", String(64)),
    Column("visit", String(64)),
    Column("form", String(64)),
    Column("form_version", String(64)),
    Column("record", Integer),
    Column("field", Text),
    # Canonical JSON text of the values; NULL means absent.
    Column("old_value", Text),
    Column("new_value", Text),
    Column("reason", Text),
    Column("ip", String(64)),
    Column("user_agent", String(400)),
    Column("channel", String(16), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_event_study_subject", "study", "subject", "seq"),
    Index("ix_audit_event_record", "record", "seq"),
    Index("ix_audit_event_ts", "ts"),
)
