"""When the database misbehaves: real faults on real databases, never mocks.

Each fault (a lock held past the lock timeout, a read-only database, a full disk, a server that is
gone or cut its connections) must give a 503 page or JSON error with ``Retry-After``, store nothing
(the audit chain still verifies and the data did not change), and the very next requests after the
fault is removed must succeed without a restart: no pooled connection stays broken.
"""
import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from ecrf import create_app, migrate
from ecrf.actor import Actor
from ecrf.audit_check import verify_database
from ecrf.db import make_engine, make_session_factory
from ecrf.models import Subject
from ecrf.scratch import Relay, scratch_database
from tests.conftest import FORMS, POSTGRES_URL, TEST_PASSWORD

UNAVAILABLE = "the database is not available; nothing was saved, try again"
BASE = "/api/v1/studies/demo"
LOCK_TIMEOUT = 0.2


class Live:
    """An app on a real database it commits to, as served: demo study, site 01, a nurse with an
    API token, and a browser signed in as the nurse."""

    def __init__(self, url):
        from ecrf.auth import accounts
        from ecrf.definitions import load_study
        from ecrf.definitions.publish import publish_study
        from ecrf.studies import add_site

        self.url = url
        self.app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "test-secret", "DATABASE_URL": url,
                               "DB_LOCK_TIMEOUT_SECONDS": LOCK_TIMEOUT,
                               "INSTANCE_PATH": "/nonexistent-instance"})
        actor = Actor.cli()
        with self.app.extensions["ecrf_db"].sessions() as session:
            publish_study(session, actor, load_study(FORMS / "demo"))
            add_site(session, actor, "demo", "01", "Odense")
            accounts.create_user(session, actor, "nurse", TEST_PASSWORD, name="Nurse",
                                 must_change_password=False)
            accounts.grant_role(session, actor, "nurse", "demo", "site_staff", ["01"])
            self.headers = {"Authorization": f"Bearer {accounts.create_token(session, actor, 'nurse')}"}
        self.api = self.app.test_client()
        self.browser = self.app.test_client()
        page = self.browser.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        signed_in = self.browser.post("/login", data={"username": "nurse", "password": TEST_PASSWORD,
                                                      "csrf_token": token})
        assert signed_in.status_code == 302

    @property
    def engine(self):
        return self.app.extensions["ecrf_db"].engine

    def enrol(self):
        return self.api.post(f"{BASE}/subjects", json={"site": "01"}, headers=self.headers)

    def page(self):
        return self.browser.get("/studies/demo/subjects")

    def stored(self):
        """(subjects stored, whether ``ecrf audit verify`` passes), read on a connection of its own."""
        engine = make_engine(self.url)
        try:
            with make_session_factory(engine)() as session:
                count = session.scalar(select(func.count()).select_from(Subject))
                report = verify_database(session)
                return count, report.ok
        finally:
            engine.dispose()

    def assert_refused(self, page=True):
        """During the fault: a 503 for a write (JSON) and, if ``page``, for a page."""
        answer = self.enrol()
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.get_json() == {"error": UNAVAILABLE}
        assert answer.headers["Retry-After"].isdigit()
        if page:
            shown = self.page()
            body = shown.get_data(as_text=True)
            assert shown.status_code == 503 and UNAVAILABLE in body and "Traceback" not in body
            assert shown.headers["Retry-After"].isdigit() and shown.mimetype == "text/html"

    def assert_recovered(self, before):
        """After the fault: nothing was stored during it and the log verifies; the very next
        requests succeed."""
        assert self.stored() == (before[0], True)
        assert self.enrol().status_code == 201
        assert self.page().status_code == 200
        assert self.enrol().status_code == 201
        assert self.stored() == (before[0] + 2, True)


@pytest.fixture
def live(new_database):
    app = Live(new_database())
    assert app.enrol().status_code == 201
    yield app
    app.engine.dispose()


def _root_can(command):
    return os.geteuid() == 0 and shutil.which(command) is not None


# --- SQLite ----------------------------------------------------------------------------------------

def _sqlite_path(url):
    return make_url(url).database


def test_sqlite_lock_held_past_the_timeout_is_a_503_then_recovers(live, backend):
    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    before = live.stored()
    holder = sqlite3.connect(_sqlite_path(live.url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        live.assert_refused(page=False)
        assert live.page().status_code == 200  # readers are not blocked in WAL mode
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    live.assert_recovered(before)


@contextlib.contextmanager
def _immutable(*paths):
    """Make files read-only even for root (chattr +i); the database file and its WAL, not the
    shared-memory index, which every connection has mapped."""
    paths = [p for p in paths if os.path.exists(p)]
    subprocess.run(["chattr", "+i", *paths], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *paths], check=True)


def test_sqlite_read_only_file_is_a_503_and_no_connection_stays_read_only(live, backend):
    """A connection opened while the file is read-only stays read-only for its whole life (the
    probe's workers answered 500 until a restart): it must be dropped, not lent again."""
    if backend != "sqlite":
        pytest.skip("a SQLite file")
    if not _root_can("chattr"):
        pytest.skip("needs root and chattr to make a file read-only for root")
    path = _sqlite_path(live.url)
    before = live.stored()
    with _immutable(path, f"{path}-wal"):
        # As a worker that starts now (on tmpfs, descriptors opened before could still write).
        live.engine.pool.dispose()
        live.assert_refused(page=False)
        assert live.page().status_code == 200  # reading still works, on a connection opened read-only
    live.assert_recovered(before)  # the first write after it gets a writable connection


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted under tmp_path (root only)."""
    if not _root_can("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    where = tmp_path / "small"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_sqlite_full_disk_is_a_503_then_recovers_when_space_is_freed(small_disk, backend):
    if backend != "sqlite":
        pytest.skip("a SQLite file on a small disk")
    with scratch_database("sqlite", small_disk) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        live = Live(url)
        assert live.enrol().status_code == 201
        before = live.stored()
        filler = small_disk / "filler"
        with open(filler, "wb") as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        stored = 0
        for _ in range(3):  # a few writes, until the WAL has grown into the full disk
            answer = live.enrol()
            if answer.status_code != 201:
                break
            stored += 1
        assert answer.status_code == 503 and answer.get_json() == {"error": UNAVAILABLE}
        live.assert_refused(page=False)
        before = (before[0] + stored, True)
        filler.unlink()
        live.assert_recovered(before)
        live.engine.dispose()


# --- PostgreSQL ------------------------------------------------------------------------------------

def _as_admin(url, sql, **params):
    """Run one statement on the server of ``url`` from an administrator's connection of its own."""
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            result = conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None
    finally:
        admin.dispose()


def _terminate_app_connections(url):
    return _as_admin(url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE datname = :db AND pid <> pg_backend_pid()", db=make_url(url).database)


def test_postgres_connections_cut_between_requests_cost_no_request(live, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL backends")
    before = live.stored()
    for _ in range(3):
        assert live.page().status_code == 200
        assert _terminate_app_connections(live.url) >= 1
        assert live.enrol().status_code == 201
        assert _terminate_app_connections(live.url) >= 1
    assert live.stored() == (before[0] + 3, True)


def _set_read_only(url, on):
    _as_admin(url, f'ALTER DATABASE "{make_url(url).database}" '
                   f"SET default_transaction_read_only = {'on' if on else 'off'}")


def test_postgres_read_only_database_is_a_503_and_no_session_stays_read_only(live, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL default_transaction_read_only")
    before = live.stored()
    _set_read_only(live.url, True)
    try:
        _terminate_app_connections(live.url)  # sessions pick the setting up when they start
        live.assert_refused(page=False)
        live.assert_refused(page=False)
        assert live.page().status_code == 200  # reading still works, on a session started read-only
    finally:
        _set_read_only(live.url, False)
    live.assert_recovered(before)  # the first write after it gets a session that may write


def test_postgres_lock_held_past_lock_timeout_is_a_503_then_recovers(live, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL lock_timeout")
    before = live.stored()
    holder = make_engine(live.url)
    try:
        with holder.connect() as conn:
            conn.execute(text("LOCK TABLE subject IN ACCESS EXCLUSIVE MODE"))
            live.assert_refused()
            conn.rollback()
    finally:
        holder.dispose()
    live.assert_recovered(before)


def test_postgres_server_gone_is_a_503_and_the_app_reconnects_when_it_is_back(new_database, backend):
    """The app reaches PostgreSQL through a relay: stopping the relay cuts every connection and
    refuses new ones (the server is gone); starting it again is the server coming back."""
    if backend != "postgresql":
        pytest.skip("a PostgreSQL server")
    url = new_database()
    target = make_url(url)
    relay = Relay((target.host or "127.0.0.1", target.port or 5432))
    relay.start()
    live = Live(relay.url(url))
    try:
        assert live.enrol().status_code == 201
        before = live.stored()
        relay.stop()
        live.assert_refused()
        live.assert_refused()
        relay.start()
        live.assert_recovered(before)
    finally:
        live.engine.dispose()
        relay.stop()


# --- a database that is not there at all ---------------------------------------------------------------

UNREACHABLE = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/test",
    "sqlite": "sqlite:////",  # a folder where the file should be: it cannot be opened
}


@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
def test_unreachable_database_is_a_503_page_and_json_never_a_traceback(kind):
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "test-secret", "DATABASE_URL": UNREACHABLE[kind],
                      "INSTANCE_PATH": "/nonexistent-instance"})
    client = app.test_client()
    answer = client.get(f"{BASE}/subjects", headers={"Authorization": "Bearer ecrf_nothing"})
    assert answer.status_code == 503 and answer.get_json() == {"error": UNAVAILABLE}
    assert answer.headers["Retry-After"].isdigit()
    # The sign-in page needs a session stored in the database (its CSRF token), so it is a 503 too.
    refused = client.get("/login")
    body = refused.get_data(as_text=True)
    assert refused.status_code == 503 and UNAVAILABLE in body and "Traceback" not in body
    assert "no-store" in refused.headers["Cache-Control"]


@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
def test_cli_on_an_unreachable_database_is_one_line_and_exit_1(kind):
    from ecrf.cli import main

    result = CliRunner().invoke(main, ["study", "list"], env={"ECRF_DATABASE_URL": UNREACHABLE[kind]})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "the database is not available" in result.output


# --- a served app, several requests --------------------------------------------------------------------

def test_served_app_answers_503_during_a_lock_and_recovers(live, backend):
    """Through a real HTTP server in a thread: requests during a held lock get 503, none 500, and
    the first request after it is released succeeds."""
    from werkzeug.serving import make_server

    if backend != "sqlite":
        pytest.skip("the SQLite write lock is held by a plain connection")
    server = make_server("127.0.0.1", 0, live.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}{BASE}/subjects"

    def enrol():
        request = urllib.request.Request(url, data=b'{"site": "01"}', method="POST",
                                         headers=dict(live.headers, **{"Content-Type": "application/json"}))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        before = live.stored()
        holder = sqlite3.connect(_sqlite_path(live.url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            during = [enrol() for _ in range(4)]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        after = [enrol() for _ in range(3)]
    finally:
        server.shutdown()
        thread.join()
    assert during == [503] * 4 and after == [201] * 3
    assert live.stored() == (before[0] + 3, True)
