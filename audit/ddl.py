"""Triggers that make the database itself refuse UPDATE and DELETE on audit_event.

Run by the migration that creates the table, on SQLite and PostgreSQL alike.
"""

SQLITE = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: DELETE refused'); END""",
]

POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger AS $$
       BEGIN
         RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP;
       END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change()""",
]

#: SQLite's INSERT OR REPLACE deletes the row it replaces without firing DELETE triggers (unless
#: PRAGMA recursive_triggers is on, which an attacker's own connection would not set), so an insert
#: that reuses a stored seq must be refused too. PostgreSQL has no REPLACE (ON CONFLICT DO UPDATE
#: fires the UPDATE trigger). Not yet in a migration: the next one should run these.
SQLITE_REPLACE_GUARD = [
    """CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event
       WHEN EXISTS (SELECT 1 FROM audit_event WHERE seq = NEW.seq)
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: REPLACE refused'); END""",
]

DROP_SQLITE = ["DROP TRIGGER IF EXISTS audit_event_no_update",
               "DROP TRIGGER IF EXISTS audit_event_no_delete"]
DROP_SQLITE_REPLACE_GUARD = ["DROP TRIGGER IF EXISTS audit_event_no_replace"]
DROP_POSTGRESQL = ["DROP TRIGGER IF EXISTS audit_event_no_update ON audit_event",
                   "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
                   "DROP FUNCTION IF EXISTS audit_event_refuse_change()"]


def create_statements(dialect_name):
    """The triggers of the initial migration (0001)."""
    return POSTGRESQL if dialect_name == "postgresql" else SQLITE


def drop_statements(dialect_name):
    return DROP_POSTGRESQL if dialect_name == "postgresql" else DROP_SQLITE


def replace_guard_statements(dialect_name):
    """The trigger refusing SQLite's INSERT OR REPLACE over a stored event (none on PostgreSQL)."""
    return [] if dialect_name == "postgresql" else SQLITE_REPLACE_GUARD


def drop_replace_guard_statements(dialect_name):
    return [] if dialect_name == "postgresql" else DROP_SQLITE_REPLACE_GUARD
