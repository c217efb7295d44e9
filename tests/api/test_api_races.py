"""Real races against a committed database: threads calling the API at the same moment.

20 writers PUT the same record from the same version: exactly one 200, 19 409s with the record as
the winner left it, never a 500, and the audit log still proves every value. 20 enrolments with
generated ids at one site: 20 x 201 with 20 different ids. 10 retries of one request with the same
Idempotency-Key: one subject, 10 identical answers.
"""
import concurrent.futures
import threading

import pytest
from sqlalchemy import func, select

from ecrf import create_app
from ecrf.actor import Actor
from ecrf.audit_check import verify_database
from ecrf.auth import accounts
from ecrf.definitions import load_study
from ecrf.definitions.publish import publish_study
from ecrf.models import Subject
from ecrf.paths import resource
from ecrf.studies import add_site

WRITERS = 20
BASE = "/api/v1/studies/demo"
VITALS = f"{BASE}/subjects/01-001/visits/baseline/forms/vitals"


@pytest.fixture
def served(new_database):
    """An app on a fresh committed database with the demo study, site 01 and a nurse's token."""
    url = new_database()
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "test-secret", "DATABASE_URL": url,
                      "INSTANCE_PATH": "/nonexistent-instance"})
    database = app.extensions["ecrf_db"]
    actor = Actor.cli()
    with database.sessions() as session:
        publish_study(session, actor, load_study(resource("forms") / "demo"))
        add_site(session, actor, "demo", "01", "Odense")
        accounts.create_user(session, actor, "nurse", "correct horse battery", must_change_password=False)
        accounts.grant_role(session, actor, "nurse", "demo", "site_staff", ["01"])
        token = accounts.create_token(session, actor, "nurse")
    yield app, database, {"Authorization": f"Bearer {token}"}
    database.engine.dispose()


def at_once(app, n, request):
    """Run ``request(client, i)`` in ``n`` threads released together; their responses."""
    barrier = threading.Barrier(n)

    def one(i):
        client = app.test_client()
        barrier.wait()
        return request(client, i)

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_racing_writers_get_one_200_and_409s(served):
    app, database, auth = served
    client = app.test_client()
    assert client.post(f"{BASE}/subjects", json={"site": "01", "subject": "01-001"}, headers=auth).status_code == 201
    assert client.put(VITALS, json={"data": {"sbp": 100}}, headers=auth).status_code == 200

    responses = at_once(app, WRITERS, lambda c, i: c.put(VITALS, headers=auth, json={
        "data": {"sbp": 110 + i}, "version": 1, "reason": f"writer {i}"}))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (WRITERS - 1)
    winner = next(r for r in responses if r.status_code == 200).get_json()
    record = client.get(VITALS, headers=auth).get_json()
    assert winner["version"] == record["version"] == 2
    for loser in (r.get_json() for r in responses if r.status_code == 409):
        assert loser["version"] == 2 and loser["data"] == record["data"]
    with database.sessions() as session:
        report = verify_database(session)
    assert report.ok, report.problem


def test_parallel_enrolments_with_generated_ids_all_succeed(served):
    app, database, auth = served
    responses = at_once(app, WRITERS, lambda c, i: c.post(f"{BASE}/subjects", json={"site": "01"},
                                                          headers=auth))
    assert [r.status_code for r in responses] == [201] * WRITERS, [r.get_json() for r in responses]
    assert sorted(r.get_json()["subject"] for r in responses) == [f"01-{n:03}" for n in range(1, WRITERS + 1)]
    with database.sessions() as session:
        assert verify_database(session).ok


def test_concurrent_retries_with_one_idempotency_key_create_once(served):
    app, database, auth = served
    headers = dict(auth, **{"Idempotency-Key": "enrol-once"})
    responses = at_once(app, 10, lambda c, i: c.post(f"{BASE}/subjects", json={"site": "01"},
                                                     headers=headers))
    assert [r.status_code for r in responses] == [201] * 10
    assert {r.get_data(as_text=True) for r in responses} == {responses[0].get_data(as_text=True)}
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == 1
