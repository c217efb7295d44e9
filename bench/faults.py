"""Database faults against a served app: ``ecrf serve`` (gunicorn, 2 workers) on a fresh database,
and per fault the answers during it (503, 500, other) and how the app comes back after it.

Each fault is injected for real: a write lock held past the lock timeout, the database file made
read-only (chattr +i, root only), a full disk (the SQLite file on a small tmpfs, root only); on
PostgreSQL its connections cut (pg_terminate_backend), the database made read-only
(default_transaction_read_only), a table lock past lock_timeout, and the server gone (the app
reaches it through a TCP relay this bench stops and starts again). During each fault the bench
sends writes (enrol a subject) and reads (list subjects) through the API; after it it counts the
requests answered with an error before the first success ("to recover", 0 means the very next one
succeeded) and the errors in the ten requests after that (a worker still holding a broken
connection shows there).

    .venv/bin/python bench/faults.py [--requests 10] [--no-postgres]
"""
import argparse
import collections
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecrf import migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.auth import accounts  # noqa: E402
from ecrf.db import make_engine, make_session_factory  # noqa: E402
from ecrf.definitions import load_study  # noqa: E402
from ecrf.definitions.publish import publish_study  # noqa: E402
from ecrf.paths import resource  # noqa: E402
from ecrf.scratch import Relay, free_port, postgres_answers, postgres_url, scratch_database  # noqa: E402
from ecrf.studies import add_site  # noqa: E402

ECRF = str(Path(sys.executable).with_name("ecrf"))
BASE = "/api/v1/studies/demo/subjects"


def prepare(url):
    """Migrate, publish the demo study with site 01 and an API token for a nurse; return the token."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    actor = Actor.system("bench")
    with make_session_factory(engine)() as session:
        publish_study(session, actor, load_study(resource("forms") / "demo"))
        add_site(session, actor, "demo", "01", "Bench site")
        accounts.create_user(session, actor, "nurse", "bench-password-2026", must_change_password=False)
        accounts.grant_role(session, actor, "nurse", "demo", "site_staff", ["01"])
        token = accounts.create_token(session, actor, "nurse")
    engine.dispose()
    return token


@contextlib.contextmanager
def served(url, token):
    """``ecrf serve`` on ``url``; yields a function making one API request (returns its status)."""
    port = free_port()
    env = dict(os.environ, ECRF_DATABASE_URL=url, ECRF_SECRET_KEY="bench-secret",
               ECRF_DB_LOCK_TIMEOUT_SECONDS="0.5", ECRF_DB_CONNECT_TIMEOUT_SECONDS="2")
    server = subprocess.Popen([ECRF, "serve", "--port", str(port), "--workers", "2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def call(write):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{BASE}", method="POST" if write else "GET",
            data=json.dumps({"site": "01"}).encode() if write else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        for _ in range(600):  # the app takes a few seconds to import on a busy machine
            with contextlib.suppress(OSError):
                if call(False) == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("ecrf serve did not start")
        yield call
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure(call, name, inject, requests):
    """Warm every worker, inject the fault, count answers, remove it, count the way back."""
    for _ in range(4):
        call(True)
    during = collections.Counter()
    with inject():
        for n in range(requests):
            during[call(n % 2 == 0)] += 1
    before_success = 0
    while before_success < 50:
        status = call(before_success % 2 == 0)
        if status in (200, 201):
            break
        before_success += 1
    after = sum(call(n % 2 == 0) not in (200, 201) for n in range(10))
    ok = during[200] + during[201]
    other = sum(v for k, v in during.items() if k not in (200, 201, 503, 500))
    print(f"  {name:<34} during: {ok:>3} ok {during[503]:>3} x 503 {during[500]:>3} x 500 {other:>3} other"
          f"   after: {before_success} to recover, {after} errors in the next 10")


# --- SQLite faults ------------------------------------------------------------------------------------

def sqlite_faults(folder, url):
    path = make_url(url).database

    @contextlib.contextmanager
    def locked():
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    @contextlib.contextmanager
    def read_only():
        files = [p for p in (path, f"{path}-wal") if os.path.exists(p)]
        subprocess.run(["chattr", "+i", *files], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)

    @contextlib.contextmanager
    def full():
        filler = Path(folder) / "filler"
        with open(filler, "wb") as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        try:
            yield
        finally:
            filler.unlink()

    if folder_is_small(folder):
        return {"disk full (16 MiB tmpfs)": full}
    faults = {"write lock held": locked}
    if os.geteuid() == 0 and shutil.which("chattr"):
        # Not on tmpfs: there a file made immutable still takes writes through descriptors
        # opened before, so the fault would not show.
        faults["file read-only (chattr +i)"] = read_only
    return faults


def folder_is_small(folder):
    return shutil.disk_usage(folder).total <= 64 * 1024 * 1024


@contextlib.contextmanager
def sqlite_folder(small):
    """A temporary folder; with ``small``, a 16 MiB tmpfs mounted on it (root only) so the disk
    can be filled, or None when it cannot be mounted."""
    with tempfile.TemporaryDirectory() as where:
        if not small:
            yield where
        elif os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", where],
                                                  stderr=subprocess.DEVNULL).returncode == 0:
            try:
                yield where
            finally:
                subprocess.run(["umount", "-l", where], check=True)
        else:
            yield None


# --- PostgreSQL faults --------------------------------------------------------------------------------

def postgres_faults(url, relay):
    database = make_url(url).database
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")

    def terminate():
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database})

    @contextlib.contextmanager
    def cut():
        terminate()
        yield

    @contextlib.contextmanager
    def read_only():
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'))
        terminate()
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{database}" RESET default_transaction_read_only'))

    @contextlib.contextmanager
    def locked():
        holder = make_engine(url)
        with holder.connect() as conn:
            conn.execute(text("LOCK TABLE subject IN ACCESS EXCLUSIVE MODE"))
            yield
            conn.rollback()
        holder.dispose()

    @contextlib.contextmanager
    def down():
        relay.stop()
        try:
            yield
        finally:
            relay.start()

    return {"connections cut (between requests)": cut, "database read-only": read_only,
            "table locked past lock_timeout": locked, "server down (relay stopped)": down}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10, help="requests during each fault")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    print("SQLite (ecrf serve, 2 workers, lock timeout 0.5 s)")
    for small in (False, True):
        with sqlite_folder(small) as folder:
            if folder is None:
                print("  disk full: skipped (mounting a small tmpfs needs root)")
                continue
            with scratch_database("sqlite", folder, prefix="ecrf_bench") as url:
                token = prepare(url)
                with served(url, token) as call:
                    for name, inject in sqlite_faults(folder, url).items():
                        measure(call, name, inject, args.requests)
    if args.no_postgres or not postgres_answers():
        return
    print("PostgreSQL (ecrf serve, 2 workers, lock_timeout 0.5 s)")
    with scratch_database("postgresql", admin_url=postgres_url(), prefix="ecrf_bench") as url:
        token = prepare(url)
        target = make_url(url)
        relay = Relay((target.host or "127.0.0.1", target.port or 5432))
        relay.start()
        with served(relay.url(url), token) as call:
            for name, inject in postgres_faults(url, relay).items():
                measure(call, name, inject, args.requests)
        relay.stop()


if __name__ == "__main__":
    main()
