"""Engine, session factory and the declarative Base shared by every model.

SQLite is the embedded default and PostgreSQL the production database; everything here behaves the
same on both. SQLite runs in WAL mode with foreign keys on, and its transactions are started by us
(``BEGIN`` or ``BEGIN IMMEDIATE``) so that a writing service holds the database write lock from its
first statement: that is what serialises audit appends on SQLite (``write_transaction``).

When the database misbehaves (down, locked past the lock timeout, read-only, full) the error is
classed by ``database_unavailable`` (pages answer 503, the CLI one line), and the engine recovers by
itself: the pool pings a connection before lending it; an error that leaves connections unusable (a
SQLite file opened while read-only stays read-only; a PostgreSQL session started read-only keeps that
default) invalidates the whole pool; and a connection opened while the database was read-only serves
one request and is closed. No worker keeps a broken connection, and no retry is made by hand.
"""
import contextlib
import datetime as dt
import os

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
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


#: Seconds a statement waits for a lock before giving up (SQLite busy_timeout, PostgreSQL lock_timeout).
DEFAULT_LOCK_TIMEOUT = 30.0
#: Seconds to wait for a PostgreSQL server to accept a connection.
DEFAULT_CONNECT_TIMEOUT = 10


def make_engine(url, *, lock_timeout=DEFAULT_LOCK_TIMEOUT, connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                **kwargs):
    """Create an engine for ``url`` with ecrf's SQLite pragmas and transaction handling, a lock
    timeout (seconds) on both databases, pre-ping and invalidation of connections a fault broke."""
    kwargs.setdefault("pool_pre_ping", True)
    if make_url(url).get_backend_name() == "postgresql":
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("connect_timeout", max(2, int(connect_timeout)))
        connect_args.setdefault("options", f"-c lock_timeout={max(1, int(lock_timeout * 1000))}")
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, lock_timeout)
    event.listen(engine, "handle_error", _invalidate_broken_connections)
    event.listen(engine, "connect", _note_read_only)
    event.listen(engine, "checkin", _drop_if_read_only)
    return engine


def _configure_sqlite(engine, lock_timeout=DEFAULT_LOCK_TIMEOUT):
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event below issue BEGIN, so we choose DEFERRED or IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {max(0, int(lock_timeout * 1000))}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        immediate = connection.get_execution_options().get("ecrf_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xff) of a database that cannot
# serve now: BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
_SQLITE_UNAVAILABLE = {5, 6, 8, 10, 13, 14, 15}
# ... and those that leave the connection itself unusable afterwards: a file opened while it was
# read-only (or unreadable) stays read-only for the life of the connection.
_SQLITE_BROKEN = {8, 10, 14}
# PostgreSQL SQLSTATEs (or their two-character classes) of a server that cannot serve now:
# connection exceptions, read-only transaction, serialization failure and deadlock, insufficient
# resources (disk full, out of memory, too many connections), lock not available (lock_timeout),
# operator intervention (statement_timeout, shutdown, terminated backend).
_PG_UNAVAILABLE_CLASSES = {"08", "53", "57"}
_PG_UNAVAILABLE = {"25006", "40001", "40P01", "55P03"}
# ... and those after which the session is not worth keeping: a session started while the database
# was read-only keeps default_transaction_read_only for its whole life.
_PG_BROKEN = {"25006", "57P01", "57P02", "57P03"}


def _driver_error(exc):
    return exc.orig if isinstance(exc, DBAPIError) else exc


def _sqlite_code(error):
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def database_unavailable(exc):
    """Whether ``exc`` means the database cannot serve right now (down, unreachable, locked past the
    lock timeout, read-only, full) rather than a bug: the request can be retried later, unchanged."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    error = _driver_error(exc)
    code = _sqlite_code(error)
    if code is not None:
        return code in _SQLITE_UNAVAILABLE
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate:
        return sqlstate in _PG_UNAVAILABLE or sqlstate[:2] in _PG_UNAVAILABLE_CLASSES
    # A PostgreSQL connection that could not be made at all carries no SQLSTATE.
    return type(error).__name__ == "OperationalError" and type(error).__module__.startswith("psycopg")


def _note_read_only(dbapi_connection, record):
    """Remember whether a new connection was opened while the database was read-only: a SQLite file
    opened then stays read-only, and a PostgreSQL session keeps default_transaction_read_only (or
    the standby it reached), for the connection's whole life."""
    if hasattr(dbapi_connection, "info") and hasattr(dbapi_connection.info, "parameter_status"):
        status = dbapi_connection.info.parameter_status
        read_only = "on" in (status("default_transaction_read_only"), status("in_hot_standby"))
    else:
        path = _sqlite_file(dbapi_connection)
        read_only = path is not None and os.path.exists(path) and not os.access(path, os.W_OK)
    record.info["ecrf_read_only"] = read_only


def _sqlite_file(dbapi_connection):
    """The file of a SQLite connection's main database (None in memory)."""
    row = next((r for r in dbapi_connection.execute("PRAGMA database_list") if r[1] == "main"), None)
    return row[2] if row and row[2] else None


def _drop_if_read_only(_dbapi_connection, record):
    """``checkin``: a connection opened read-only serves its one request and is then closed, so
    that the first request after the database becomes writable again gets a writable connection."""
    if record.info.get("ecrf_read_only"):
        record.invalidate()


def error_summary(exc):
    """The first line of a database error's driver message (for logs and one-line CLI errors)."""
    error = getattr(exc, "orig", None) or exc
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _invalidate_broken_connections(context):
    """``handle_error``: count an error that leaves the connection unusable as a disconnect, so the
    pool drops that connection (and the others of its generation) instead of lending it again."""
    error = context.original_exception
    code = _sqlite_code(error)
    if code in _SQLITE_BROKEN or getattr(error, "sqlstate", None) in _PG_BROKEN:
        context.is_disconnect = True


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

    def __init__(self, bind, *, lock_timeout=DEFAULT_LOCK_TIMEOUT, connect_timeout=DEFAULT_CONNECT_TIMEOUT):
        self.engine = (make_engine(bind, lock_timeout=lock_timeout, connect_timeout=connect_timeout)
                       if isinstance(bind, str) else bind)
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
