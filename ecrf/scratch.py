"""Throwaway databases for the test suite and the benchmarks: a fresh SQLite file, or a PostgreSQL
database created next to the one an admin URL names and dropped afterwards."""
import contextlib
import os
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

#: The local PostgreSQL server the suite and benches use unless ECRF_TEST_POSTGRES_URL says otherwise.
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url():
    return os.environ.get("ECRF_TEST_POSTGRES_URL") or DEFAULT_POSTGRES


@contextlib.contextmanager
def scratch_database(kind, folder=None, admin_url=None, prefix="ecrf_scratch"):
    """Yield the URL of a new, empty database of ``kind`` ("sqlite" or "postgresql"); remove it after.

    SQLite files go in ``folder`` (a temporary folder when None); PostgreSQL databases are created
    through ``admin_url`` (default: ``postgres_url()``) and dropped with FORCE.
    """
    if kind == "sqlite":
        with contextlib.ExitStack() as stack:
            where = Path(folder) if folder else Path(stack.enter_context(tempfile.TemporaryDirectory()))
            yield f"sqlite:///{where / f'{prefix}-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    admin_url = admin_url or postgres_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def postgres_answers(admin_url=None):
    """Whether the PostgreSQL server answers (benchmarks skip it when not)."""
    from sqlalchemy.exc import OperationalError

    engine = create_engine(admin_url or postgres_url())
    try:
        with engine.connect():
            return True
    except OperationalError:
        return False
    finally:
        engine.dispose()
