"""The database itself refuses to change history: triggers created by the migrations."""
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from audit import audit_event


@pytest.fixture
def logged(trial):
    trial.enrol("01-001")
    trial.save("01-001", "baseline", "vitals", {"sbp": 120})


def _refused(connection, statement, params=None):
    with pytest.raises(DBAPIError, match="append-only") as caught:
        with connection.begin_nested():
            connection.execute(statement, params or {})
    return caught


def test_update_is_refused(connection, logged):
    _refused(connection, update(audit_event).where(audit_event.c.seq == 1).values(reason="rewritten"))
    _refused(connection, update(audit_event).values(reason="everything rewritten"))


def test_delete_is_refused(connection, logged):
    _refused(connection, audit_event.delete().where(audit_event.c.seq == 1))
    _refused(connection, audit_event.delete())


def test_upsert_over_a_stored_event_is_refused(connection, logged):
    # ON CONFLICT DO UPDATE is an UPDATE as far as the triggers are concerned, on both databases.
    columns = ", ".join(c.name for c in audit_event.columns)
    _refused(connection, text(f"INSERT INTO audit_event ({columns}) SELECT {columns} FROM audit_event "
                              "WHERE seq = 1 ON CONFLICT (seq) DO UPDATE SET reason = 'rewritten'"))


def test_truncate_is_refused_on_postgresql(connection, logged):
    if connection.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (DELETE without WHERE is refused above)")
    _refused(connection, text("TRUNCATE audit_event"))


def _replace_first_event(connection):
    columns = ", ".join(c.name for c in audit_event.columns)
    connection.execute(text(f"INSERT OR REPLACE INTO audit_event ({columns}) "
                            f"SELECT {columns} FROM audit_event WHERE seq = 1"))


def test_migrated_sqlite_database_refuses_insert_or_replace(connection, logged):
    if connection.dialect.name != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite's")
    with pytest.raises(DBAPIError, match="append-only: REPLACE refused"):
        with connection.begin_nested():
            _replace_first_event(connection)

