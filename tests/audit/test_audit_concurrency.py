"""Several processes writing at once: the appends are serialised (PostgreSQL's advisory lock, SQLite's
write lock), so the chain never forks and no event is lost."""
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit import audit_event
from ecrf.actor import Actor
from ecrf.audit_check import verify_database
from ecrf.db import make_engine, make_session_factory
from ecrf.definitions import load_study
from ecrf.definitions.publish import publish_study
from tests.conftest import run_processes

HERE = Path(__file__).parent
WORKERS = 4


@pytest.mark.slow  # four spawned interpreters importing ecrf: several seconds per backend
def test_concurrent_writers_leave_an_intact_chain(new_database, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # spawned processes get this sys.path and import the worker
    import audit_worker

    url = new_database()
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        publish_study(session, Actor.cli(), load_study(HERE / "forms" / "audit-trial"))
    with engine.connect() as conn:
        before = conn.scalar(select(func.count()).select_from(audit_event))

    run_processes(audit_worker.run, [(url, n, "01" if n % 2 else "02") for n in range(WORKERS)], 120)

    operations = WORKERS * audit_worker.SUBJECTS * audit_worker.OPERATIONS_PER_SUBJECT
    assert operations == 100
    expected = before + WORKERS * audit_worker.SUBJECTS * audit_worker.EVENTS_PER_SUBJECT
    with sessions() as session:
        report = verify_database(session)
    engine.dispose()
    assert report.ok, report.problem
    assert report.events == report.head_seq == expected
    assert report.subjects == WORKERS * audit_worker.SUBJECTS
    assert report.records == WORKERS * audit_worker.SUBJECTS * 3


@pytest.fixture(autouse=True)
def _forget_worker_module():
    yield
    import sys

    sys.modules.pop("audit_worker", None)
