"""Login spray from one client address: how soon the per-address throttle answers 429, and how many
accounts the spray manages to lock first. Prints figures; not part of the test run.

    .venv/bin/python bench/login_spray.py [--logins 300] [--users 50] [--per-user 5] [--backend sqlite|postgresql]

A fresh database (SQLite file, or a PostgreSQL database created next to ECRF_TEST_POSTGRES_URL or the
local default server) gets ``--users`` accounts; then ``--logins`` sign-ins with wrong passwords, cycling
over those usernames (and some unknown ones), ``--per-user`` tries each in a row (5, the
lockout threshold: the spray that locks most accounts),, go through the real /login form (CSRF token included) of
an app with the shipped defaults (ECRF_LOCKOUT_ATTEMPTS 5, ECRF_LOGIN_ADDRESS_ATTEMPTS 30 per 15
minutes, unless the environment sets them), all from one address. Reported: answers by status, how
many accounts ended locked, the time and attempt number of the first 429 and its Retry-After, and
whether a legitimate user signing in from another address at the end still gets in.
"""
import argparse
import datetime as dt
import re
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecrf import create_app, migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.auth import accounts, passwords  # noqa: E402
from ecrf.db import get_session, make_engine  # noqa: E402
from ecrf.models import User  # noqa: E402
from ecrf.scratch import scratch_database  # noqa: E402

PASSWORD = "violet tractor lantern 42"
SPRAYER, ELSEWHERE = "203.0.113.7", "198.51.100.20"


def _token(page):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)


def _login(client, username, password, address):
    env = {"REMOTE_ADDR": address}
    token = _token(client.get("/login", environ_base=env))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base=env)


def run(url, logins, users, per_user):
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    passwords.configure(1, 1024)  # the spray measures the throttle, not argon2's cost
    app = create_app({"ECRF_ENV": "development", "SECRET_KEY": "bench", "DATABASE_URL": url,
                      "INSTANCE_PATH": "/nonexistent", "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024})
    names = [f"user{i:03d}" for i in range(users)]
    with app.app_context():
        session = get_session()
        for name in names:
            accounts.create_user(session, Actor.cli(), name, PASSWORD, must_change_password=False)
    client = app.test_client()
    statuses, first, retry_after = Counter(), None, None
    targets = names + [f"ghost{i:03d}" for i in range(max(1, users // 5))]
    start = time.perf_counter()
    for attempt in range(1, logins + 1):
        response = _login(client, targets[(attempt - 1) // per_user % len(targets)], "wrong guess 12345", SPRAYER)
        statuses[response.status_code] += 1
        if response.status_code == 429 and first is None:
            first = (attempt, time.perf_counter() - start)
            retry_after = response.headers.get("Retry-After")
    elapsed = time.perf_counter() - start
    with app.app_context():
        now = dt.datetime.now(dt.timezone.utc)
        locked = get_session().scalar(select(func.count()).select_from(User).where(User.locked_until > now))
    legit = _login(app.test_client(), names[-1], PASSWORD, ELSEWHERE).status_code
    return statuses, locked, first, retry_after, elapsed, legit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with scratch_database(args.backend, prefix="ecrf_bench") as url:
        statuses, locked, first, retry_after, elapsed, legit = run(url, args.logins, args.users, args.per_user)
    print(f"login spray on {args.backend}: {args.logins} wrong-password sign-ins from one address over "
          f"{args.users} accounts (+ unknown names), {args.per_user} per name in a row, {elapsed:.1f} s")
    print(f"  answers: {dict(sorted(statuses.items()))}; refused with 429: {statuses[429]}")
    print(f"  accounts locked: {locked} of {args.users}")
    if first:
        print(f"  first 429: attempt {first[0]}, after {first[1]:.2f} s, Retry-After {retry_after} s")
    else:
        print("  no 429 (throttle off?)")
    print(f"  a real user from another address afterwards: HTTP {legit} ({'signed in' if legit == 302 else 'refused'})")


if __name__ == "__main__":
    main()
