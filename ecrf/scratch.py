"""Throwaway databases for the test suite and the benchmarks: a fresh SQLite file, or a PostgreSQL
database created next to the one an admin URL names and dropped afterwards; and a relay through
which a server can be made to go away and come back."""
import contextlib
import os
import socket
import tempfile
import threading
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


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """A TCP relay on 127.0.0.1 to ``target`` (host, port): stopping it is the server going away
    (every connection through it cut, new ones refused); starting it is the server coming back."""

    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self._listener = None
        self._sockets = []

    def start(self):
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self):
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def url(self, url):
        """``url`` (a SQLAlchemy URL string) pointed at this relay."""
        from sqlalchemy.engine import make_url

        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
