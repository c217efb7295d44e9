"""Races through the JSON API: N writers PUT the same record from the same version, and N clients
enrol subjects with generated ids at one site, all released at the same moment, for several rounds
on each database. Prints winners, 409s and 500s per round; the audit log is verified at the end.

    .venv/bin/python bench/race.py [--writers 20] [--rounds 5] [--no-postgres]

Each writer is a thread with its own Flask test client and database connection (the app and the
database are real; only the HTTP socket is left out). The promise: exactly one 200 and N-1 409s per
write race, N 201s per enrolment race, never a 500. PostgreSQL is used when ECRF_TEST_POSTGRES_URL
(or the default local server) answers; the bench creates and drops its own database.
"""
import argparse
import collections
import concurrent.futures
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecrf import create_app, migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.audit_check import verify_database  # noqa: E402
from ecrf.auth import accounts, passwords  # noqa: E402
from ecrf.db import make_engine  # noqa: E402
from ecrf.definitions import load_study  # noqa: E402
from ecrf.definitions.publish import publish_study  # noqa: E402
from ecrf.paths import resource  # noqa: E402
from ecrf.scratch import postgres_answers, postgres_url, scratch_database  # noqa: E402
from ecrf.studies import add_site  # noqa: E402

BASE = "/api/v1/studies/demo"


def serve(url):
    """The app on a migrated database holding the demo study, site 01 and a nurse; her token."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "bench", "DATABASE_URL": url,
                      "INSTANCE_PATH": "/nonexistent-instance"})
    app.config["PROPAGATE_EXCEPTIONS"] = False  # an unhandled error is a 500 answer, as when served
    actor = Actor.system("bench")
    with app.extensions["ecrf_db"].sessions() as session:
        publish_study(session, actor, load_study(resource("forms") / "demo"))
        add_site(session, actor, "demo", "01", "Odense")
        accounts.create_user(session, actor, "nurse", "bench password 2026", must_change_password=False)
        accounts.grant_role(session, actor, "nurse", "demo", "site_staff", ["01"])
        token = accounts.create_token(session, actor, "nurse")
    return app, {"Authorization": f"Bearer {token}"}


def at_once(app, n, request):
    """``request(client, i)`` in ``n`` threads released together: a Counter of status codes."""
    barrier = threading.Barrier(n)

    def one(i):
        client = app.test_client()
        barrier.wait()
        return request(client, i).status_code

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return collections.Counter(pool.map(one, range(n)))


def write_race(app, auth, round_no, writers):
    client = app.test_client()
    subject = f"01-R{round_no:02}"
    path = f"{BASE}/subjects/{subject}/visits/baseline/forms/vitals"
    assert client.post(f"{BASE}/subjects", json={"site": "01", "subject": subject}, headers=auth).status_code == 201
    assert client.put(path, json={"data": {"sbp": 100}}, headers=auth).status_code == 200
    return at_once(app, writers, lambda c, i: c.put(path, headers=auth, json={
        "data": {"sbp": 110 + i}, "version": 1, "reason": f"writer {i}"}))


def enrol_race(app, auth, writers):
    return at_once(app, writers, lambda c, i: c.post(f"{BASE}/subjects", json={"site": "01"}, headers=auth))


def others(counts, *expected):
    return sum(n for code, n in counts.items() if code not in expected)


def bench(kind, url, writers, rounds):
    app, auth = serve(url)
    totals = collections.Counter()
    print(f"\n{kind}: {writers} writers, {rounds} rounds")
    print("  round   PUT race: 200  409  500  other   enrolments: 201  409  500  other")
    for r in range(1, rounds + 1):
        put, enrol = write_race(app, auth, r, writers), enrol_race(app, auth, writers)
        print(f"  {r:5}             {put[200]:3}  {put[409]:3}  {put[500]:3}  {others(put, 200, 409, 500):5}"
              f"                {enrol[201]:3}  {enrol[409]:3}  {enrol[500]:3}  {others(enrol, 201, 409, 500):5}")
        totals.update({("put", k): v for k, v in put.items()})
        totals.update({("enrol", k): v for k, v in enrol.items()})
    with app.extensions["ecrf_db"].sessions() as session:
        report = verify_database(session)
    app.extensions["ecrf_db"].engine.dispose()
    print(f"  total             {totals['put', 200]:3}  {totals['put', 409]:3}  {totals['put', 500]:3}"
          f"                      {totals['enrol', 201]:3}  {totals['enrol', 409]:3}  {totals['enrol', 500]:3}")
    print(f"  audit verify: {'intact' if report.ok else report.problem} ({report.events} events)")
    return totals, report.ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    passwords.configure(1, 1024)  # the password hash cost is not what is measured here
    kinds = ["sqlite"] + ([] if args.no_postgres or not postgres_answers() else ["postgresql"])
    kept = True
    for kind in kinds:
        with scratch_database(kind, admin_url=postgres_url(), prefix="ecrf_bench") as url:
            totals, ok = bench(kind, url, args.writers, args.rounds)
        kept &= ok and totals["put", 200] == args.rounds and totals["put", 500] == totals["enrol", 500] == 0 \
            and totals["enrol", 201] == args.rounds * args.writers
    print("\nevery promise kept" if kept else "\nA PROMISE WAS BROKEN (see above)")
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
