"""Engine, session factory and the declarative Base shared by every model.

SQLite is the embedded default and PostgreSQL the production database; everything here behaves the
same on both. SQLite runs in WAL mode with foreign keys on, and its transactions are started by us
(``BEGIN`` or ``BEGIN IMMEDIATE``) so that a writing service holds the database write lock from its
first statement: that is what serialises audit appends on SQLite (``write_transaction``).
"""
import contextlib
import datetime as dt

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A JSON document column: JSONB on PostgreSQL, JSON text on SQLite.
JSONDocument = JSON().with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on both databases (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict: JSONDocument}


def utcnow():
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


def make_engine(url, **kwargs):
    """Create an engine for ``url`` with ecrf's SQLite pragmas and transaction handling."""
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine):
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event below issue BEGIN, so we choose DEFERRED or IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        immediate = connection.get_execution_options().get("ecrf_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_session_factory(bind):
    """Sessions on ``bind``: an engine, or (in tests) a connection whose outer transaction the test
    rolls back; services' transactions then become savepoints inside it."""
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True,
                        join_transaction_mode="create_savepoint")


#: session.info key set while a service transaction is open; nested service calls join it.
_WRITING = "ecrf_writing"


@contextlib.contextmanager
def write_transaction(session):
    """Run a service's writes in one transaction: begin it as a writer, or join the one open.

    On SQLite the transaction starts with BEGIN IMMEDIATE (the database write lock is taken at once,
    so two writers never both read the audit head); on PostgreSQL the audit append takes its own
    advisory lock. Commits on success and rolls back on any exception when it began the transaction;
    a service called inside another service's ``write_transaction`` joins it, so calls can be grouped.

    A read-only transaction the session began by itself (a view loading objects first) is ended
    before the write begins. Pending changes made outside a service are a bug (only services write
    clinical data) and are refused rather than committed.
    """
    if session.info.get(_WRITING):
        yield session
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("changes pending outside a service transaction: only services write")
    if session.in_transaction():
        session.commit()
    session.info[_WRITING] = True
    try:
        with session.begin():
            session.connection(execution_options={"ecrf_write": True})
            yield session
    except IntegrityError as exc:
        if _unique_violation(exc):
            # Two writers created the same thing at the same moment (on PostgreSQL both can read
            # "not there yet"): the loser gets a conflict, never a 500. Everything rolled back.
            raise _conflict() from None
        raise
    except StaleDataError:
        # A versioned row (``version_id_col``) changed between our read and our UPDATE: another
        # writer committed first. Everything rolled back; the caller reloads and tries again.
        raise _conflict() from None
    except DBAPIError as exc:
        if _lost_race(exc):
            raise _conflict() from None
        raise
    finally:
        session.info.pop(_WRITING, None)


def _conflict():
    from ecrf.errors import Conflict

    return Conflict("someone else saved the same thing at the same moment; reload and try again")


def _unique_violation(exc):
    """Whether an IntegrityError is a unique-constraint violation (not a bug such as a NULL)."""
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(orig)


#: PostgreSQL's serialization_failure and deadlock_detected: the transaction lost a race with
#: another one and was rolled back by the server; nothing of it was written.
_RACE_SQLSTATES = frozenset({"40001", "40P01"})


def _lost_race(exc):
    """Whether a database error says this transaction lost a race with a concurrent one."""
    return getattr(exc.orig, "sqlstate", None) in _RACE_SQLSTATES


class Database:
    """The engine and session factory of one app; a session per request, closed at its end."""

    def __init__(self, bind):
        self.engine = make_engine(bind) if isinstance(bind, str) else bind
        self.sessions = make_session_factory(bind if not isinstance(bind, str) else self.engine)

    def init_app(self, app):
        app.extensions["ecrf_db"] = self
        app.teardown_appcontext(self._close)

    @staticmethod
    def _close(_exc):
        from flask import g

        session = g.pop("ecrf_session", None)
        if session is not None:
            session.close()


def get_session():
    """The current request's (or app context's) session."""
    from flask import current_app, g

    if "ecrf_session" not in g:
        g.ecrf_session = current_app.extensions["ecrf_db"].sessions()
    return g.ecrf_session
