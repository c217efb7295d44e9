"""Permission-check and login benchmarks. Prints figures; not part of the test run.

    .venv/bin/python bench/permissions.py [--requests 300] [--logins 20] [--no-postgres]

1. The added cost of the permission checks per request: the same pages and API calls served with the
   permission table asked as usual, and with every question to it answered "allowed" without a
   lookup; the ratio of the medians (target <= 1.1).
2. Login throughput with the password hash at its configured cost (ECRF_ARGON2_TIME_COST and
   ECRF_ARGON2_MEMORY_KIB, by default argon2id with 3 passes over 64 MiB): a whole sign-in
   (``authenticate``: hash check, counters and the audit event) one after another, and the hash
   check alone on 1 and 2 threads (argon2 releases the GIL while it hashes).

PostgreSQL is measured when ECRF_TEST_POSTGRES_URL (or the default local server) answers; the bench
creates and drops its own database.
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import RequestContext  # noqa: E402
from ecrf.scratch import postgres_answers, postgres_url, scratch_database  # noqa: E402
from ecrf import create_app, migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.auth import accounts, passwords, permissions  # noqa: E402
from ecrf.auth.login import authenticate  # noqa: E402
from ecrf.capture.service import enrol_subject, save_form  # noqa: E402
from ecrf.db import make_engine, make_session_factory  # noqa: E402
from ecrf.definitions import load_study  # noqa: E402
from ecrf.definitions.publish import publish_study  # noqa: E402
from ecrf.paths import resource  # noqa: E402
from ecrf.studies import add_site  # noqa: E402

POSTGRES = postgres_url()
PASSWORD = "bench passphrase 2026"


def database(kind):
    """A fresh database URL of ``kind``, removed afterwards."""
    return scratch_database(kind, admin_url=POSTGRES, prefix="ecrf_bench")


def prepare(url, subjects=200):
    """The demo study, two sites, ``subjects`` subjects with a saved form, and one user per role."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    session = make_session_factory(engine)()
    actor = Actor.cli()
    publish_study(session, actor, load_study(resource("forms") / "demo"))
    add_site(session, actor, "demo", "01", "Odense")
    add_site(session, actor, "demo", "02", "Aarhus")
    for n in range(subjects):
        key = f"{'01' if n % 2 else '02'}-{n:04}"
        enrol_subject(session, actor, "demo", key[:2], key)
        save_form(session, actor, "demo", key, "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"},
                  complete=True)
    accounts.create_user(session, actor, "mon", PASSWORD, must_change_password=False)
    accounts.grant_role(session, actor, "mon", "demo", "monitor")
    accounts.create_user(session, actor, "nurse", PASSWORD, must_change_password=False)
    accounts.grant_role(session, actor, "nurse", "demo", "site_staff", ["01"])
    token = accounts.create_token(session, actor, "nurse")
    session.close()
    return engine, token


@contextlib.contextmanager
def without_permission_checks():
    """Every question to the permission table answered "allowed", without a database lookup."""
    saved = {name: getattr(permissions, name) for name in
             ("granting_role", "require", "can", "visible_site_ids", "studies_where")}
    permissions.granting_role = lambda *a, **k: "monitor"
    permissions.require = lambda *a, **k: "monitor"
    permissions.can = lambda *a, **k: True
    permissions.visible_site_ids = lambda *a, **k: None
    permissions.studies_where = lambda *a, **k: {1}
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(permissions, name, value)


def time_requests(client, path, n, headers=None):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path, headers=headers or {})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times)


def bench_checks(url, requests):
    engine, token = prepare(url)
    app = create_app({"ECRF_ENV": "development", "SECRET_KEY": "bench", "DATABASE_URL": url,
                      "SECURE_COOKIES": False, "WTF_CSRF_ENABLED": False,
                      "INSTANCE_PATH": tempfile.gettempdir(), "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024})
    client = app.test_client()
    assert client.post("/login", data={"username": "mon", "password": PASSWORD}).status_code == 302
    bearer = {"Authorization": f"Bearer {token}"}
    pages = [("study overview", "/studies/demo", None),
             ("subject matrix (50 rows)", "/studies/demo/subjects", None),
             ("query list", "/studies/demo/queries", None),
             ("API: read a form", "/api/v1/studies/demo/subjects/01-0001/visits/baseline/forms/vitals", bearer)]
    rows = []
    for label, path, headers in pages:
        time_requests(client, path, 20, headers)  # warm up caches and the connection pool
        checked, unchecked = [], []
        for _ in range(3):  # interleave, so that drift hits both sides alike
            checked.append(time_requests(client, path, requests // 3, headers))
            with without_permission_checks():
                unchecked.append(time_requests(client, path, requests // 3, headers))
        rows.append((label, min(checked), min(unchecked)))
    engine.dispose()
    return rows


def bench_logins(url, logins, time_cost, memory_kib):
    passwords.configure(time_cost, memory_kib)
    engine = make_engine(url)
    migrate.upgrade(engine)
    session = make_session_factory(engine)()
    accounts.create_user(session, Actor.cli(), "signer", PASSWORD, must_change_password=False)
    context = RequestContext(channel="page", ip="127.0.0.1")
    start = time.perf_counter()
    for _ in range(logins):
        assert authenticate(session, "signer", PASSWORD, context) is not None
    sequential = logins / (time.perf_counter() - start)
    stored = passwords.hash_password(PASSWORD)

    def verify(count):
        for _ in range(count):
            passwords.verify_password(stored, PASSWORD)

    threaded = {}
    for threads in (1, 2):
        workers = [threading.Thread(target=verify, args=(logins // threads,)) for _ in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        threaded[threads] = (logins // threads) * threads / (time.perf_counter() - start)
    session.close()
    engine.dispose()
    return sequential, threaded


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per page and side")
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    from ecrf.settings import load

    settings = load()
    time_cost, memory_kib = settings["ARGON2_TIME_COST"], settings["ARGON2_MEMORY_KIB"]
    kinds = ["sqlite"] + ([] if args.no_postgres or not postgres_answers(POSTGRES) else ["postgresql"])
    print(f"CPU cores: {os.cpu_count()}; median of {args.requests // 3} requests, best of 3 rounds per side")
    for kind in kinds:
        with database(kind) as url:
            rows = bench_checks(url, args.requests)
        print(f"\n[{kind}] permission checks per request")
        print(f"  {'page':<28} {'with checks':>12} {'without':>10} {'ratio':>7}")
        for label, checked, unchecked in rows:
            print(f"  {label:<28} {checked * 1000:>9.2f} ms {unchecked * 1000:>7.2f} ms {checked / unchecked:>7.3f}")
        with database(kind) as url:
            sequential, threaded = bench_logins(url, args.logins, time_cost, memory_kib)
        print(f"[{kind}] login throughput, argon2id time_cost={time_cost} memory={memory_kib} KiB")
        print(f"  whole sign-in (hash + counters + audit event), one after another: {sequential:.1f} logins/s "
              f"({1000 / sequential:.0f} ms each)")
        print(f"  hash check alone: {threaded[1]:.1f}/s on 1 thread, {threaded[2]:.1f}/s on 2 threads")


if __name__ == "__main__":
    main()
