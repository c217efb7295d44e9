"""Triggers that make the database itself refuse to change an append-only table, generated from a
declaration of the table and its keys (``AppendOnly``), and the check that they are all in place.

For each declared table, on both databases, UPDATE and DELETE are refused row by row. On PostgreSQL
TRUNCATE is refused too, and ``INSERT ... ON CONFLICT DO UPDATE`` is an UPDATE to the triggers. On
SQLite ``INSERT OR REPLACE`` / ``REPLACE INTO`` deletes the row it replaces without firing DELETE
triggers (unless ``PRAGMA recursive_triggers`` is on, which a forger's own connection would not set),
so a BEFORE INSERT trigger refuses any insert whose primary key or any unique key is already stored.
SQLite cannot tell that trigger which conflict clause the statement carries: an ``INSERT OR IGNORE``
or ``ON CONFLICT DO NOTHING`` over a stored row is refused there too (on PostgreSQL it does nothing);
either way nothing changes.

ecrf declares its append-only tables in one list (``ecrf.models.append_only.APPEND_ONLY``); the
migrations create these triggers from it and ``ecrf audit verify`` checks them with
``trigger_problems``. The statements of the first migrations (0001, 0002, 0005) are kept below as
they were, for those migrations and the downgrade of the one that replaced them.
"""
import dataclasses
import re

from sqlalchemy import text

#: The PostgreSQL function every append-only trigger calls.
FUNCTION = "append_only_refuse_change"
_FUNCTION_BODY = """
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
"""


@dataclasses.dataclass(frozen=True)
class AppendOnly:
    """One table the database refuses to change: its name and its keys, the primary key first and
    then each unique key (each a tuple of column names)."""

    table: str
    keys: tuple

    def trigger_sql(self, dialect_name):
        """``{trigger name: CREATE TRIGGER statement}`` for this table on ``dialect_name``."""
        t = self.table
        if dialect_name == "postgresql":
            return {
                f"{t}_no_change": (f"CREATE TRIGGER {t}_no_change BEFORE UPDATE OR DELETE ON {t} "
                                   f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"),
                f"{t}_no_truncate": (f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                                     f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"),
            }
        stored = " OR ".join(
            f"EXISTS (SELECT 1 FROM {t} WHERE {' AND '.join(f'{c} = NEW.{c}' for c in key)})"
            for key in self.keys)
        return {
            f"{t}_no_update": (f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} "
                               f"BEGIN SELECT RAISE(ABORT, '{t} is append-only: UPDATE refused'); END"),
            f"{t}_no_delete": (f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} "
                               f"BEGIN SELECT RAISE(ABORT, '{t} is append-only: DELETE refused'); END"),
            f"{t}_no_replace": (f"CREATE TRIGGER {t}_no_replace BEFORE INSERT ON {t} WHEN {stored} "
                                f"BEGIN SELECT RAISE(ABORT, '{t} is append-only: REPLACE refused "
                                f"(a row with this key is stored)'); END"),
        }


def _function_sql():
    return f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $${_FUNCTION_BODY}$$ LANGUAGE plpgsql"


def create_statements(dialect_name, tables):
    """The statements creating the triggers of each ``AppendOnly`` in ``tables``."""
    statements = [_function_sql()] if dialect_name == "postgresql" else []
    for table in tables:
        statements.extend(table.trigger_sql(dialect_name).values())
    return statements


def drop_statements(dialect_name, tables, function=True):
    """The statements dropping those triggers (and PostgreSQL's function, unless ``function`` is
    false: other tables' triggers may still call it)."""
    postgresql = dialect_name == "postgresql"
    statements = [f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table.table}" if postgresql else "")
                  for table in tables for name in table.trigger_sql(dialect_name)]
    if postgresql and function:
        statements.append(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    return statements


def _normal(sql):
    return re.sub(r"\s+", " ", sql or "").strip().rstrip(";").lower()


# PostgreSQL's pg_trigger.tgtype bits: ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32.
_PG_TYPES = {"_no_change": 1 | 2 | 8 | 16, "_no_truncate": 2 | 32}
_PG_TRIGGERS = text("""
    SELECT t.tgname, c.relname, t.tgenabled, t.tgtype, p.proname, p.prosrc
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE NOT t.tgisinternal AND c.relnamespace = to_regnamespace(current_schema())::oid""")
_SQLITE_TRIGGERS = text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")


def trigger_problems(connection, tables):
    """One message for each trigger ``tables`` declares that is missing, disabled or not the one
    declared (checked on ``connection``, in its transaction); empty when every one is in place."""
    dialect = connection.dialect.name
    problems = []
    if dialect == "postgresql":
        found = {(name, table): (enabled, kind, function, source)
                 for name, table, enabled, kind, function, source in connection.execute(_PG_TRIGGERS)}
    else:
        found = {(name, table): sql for name, table, sql in connection.execute(_SQLITE_TRIGGERS)}
    for declared in tables:
        for name, sql in declared.trigger_sql(dialect).items():
            label = f"append-only trigger {name} on {declared.table}"
            stored = found.get((name, declared.table))
            if stored is None:
                problems.append(f"{label} is missing: the database no longer refuses to change "
                                f"{declared.table}")
            elif dialect != "postgresql":
                if _normal(stored) != _normal(sql):
                    problems.append(f"{label} is not the declared one (it was replaced)")
            else:
                enabled, kind, function, source = stored
                if enabled not in ("O", "A"):
                    problems.append(f"{label} is disabled")
                elif (kind != _PG_TYPES[name[len(declared.table):]] or function != FUNCTION
                      or _normal(source) != _normal(_FUNCTION_BODY)):
                    problems.append(f"{label} is not the declared one (it was replaced)")
    return problems


# --- the statements of the first migrations, as they ran -------------------------------------------

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
SAE_TABLES = ("sae_report", "sae_receipt")


def initial_statements(dialect_name):
    """The audit_event triggers of the initial migration (0001)."""
    return POSTGRESQL if dialect_name == "postgresql" else SQLITE


def drop_initial_statements(dialect_name):
    return DROP_POSTGRESQL if dialect_name == "postgresql" else DROP_SQLITE


def replace_guard_statements(dialect_name):
    """Migration 0005's trigger refusing SQLite's INSERT OR REPLACE over a stored event."""
    return [] if dialect_name == "postgresql" else SQLITE_REPLACE_GUARD


def drop_replace_guard_statements(dialect_name):
    return [] if dialect_name == "postgresql" else DROP_SQLITE_REPLACE_GUARD


def sae_statements(dialect_name):
    """The sae_report and sae_receipt triggers of migration 0002 (UPDATE and DELETE only)."""
    if dialect_name == "postgresql":
        yield """CREATE OR REPLACE FUNCTION sae_report_refuse_change() RETURNS trigger AS $$
                 BEGIN
                   RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
                 END; $$ LANGUAGE plpgsql"""
        for table in SAE_TABLES:
            yield (f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION sae_report_refuse_change()")
            yield (f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION sae_report_refuse_change()")
    else:
        for table in SAE_TABLES:
            for operation in ("UPDATE", "DELETE"):
                yield (f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END")


def drop_sae_statements(dialect_name):
    if dialect_name == "postgresql":
        return [*(f"DROP TRIGGER IF EXISTS {t}_{kind} ON {t}" for t in SAE_TABLES
                  for kind in ("no_change", "no_truncate")),
                "DROP FUNCTION IF EXISTS sae_report_refuse_change()"]
    return [f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in SAE_TABLES for op in ("update", "delete")]
