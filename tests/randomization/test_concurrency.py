"""Several processes randomizing at the same instant never share a slot or a number (both
backends: on SQLite the writer lock serialises them, on PostgreSQL the unique constraints do)."""
from pathlib import Path

import pytest
from sqlalchemy import select

from ecrf.actor import Actor
from ecrf.audit_check import verify_database
from ecrf.capture.service import enrol_subject, save_form
from ecrf.db import make_engine, make_session_factory
from ecrf.definitions import load_study
from ecrf.definitions.publish import publish_study
from ecrf.models import Allocation, AllocationSlot, Subject
from ecrf.randomization.service import generate_list
from tests.conftest import run_processes
from tests.randomization.conftest import study_document, write_rz_study

HERE = Path(__file__).parent
WORKERS = 4
PER_WORKER = 6


@pytest.mark.parametrize("method", ["permuted_blocks", "minimization"])
def test_concurrent_randomizations_take_distinct_slots(new_database, monkeypatch, tmp_path, method):
    monkeypatch.syspath_prepend(str(HERE))
    import rz_worker

    url = new_database()
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    actor = Actor.cli()
    document = study_document(method=method, stratify_by=("site",))
    keys = []
    with sessions() as session:
        publish_study(session, actor, load_study(write_rz_study(tmp_path, document)))
        generate_list(session, actor, "rz", 40)
        for _ in range(WORKERS * PER_WORKER):
            subject = enrol_subject(session, actor, "rz", "01")
            save_form(session, actor, "rz", subject.key, "screening", "elig", {"inc_ok": True}, complete=True)
            keys.append(subject.key)

    run_processes(rz_worker.run, [(url, "rz", keys[n::WORKERS]) for n in range(WORKERS)], 180)

    with sessions() as session:
        rows = list(session.scalars(select(Allocation)))
        assert len(rows) == WORKERS * PER_WORKER
        numbers = sorted(r.randomization_number for r in rows)
        assert len(set(numbers)) == len(numbers)
        arms = dict(session.execute(select(Subject.id, Subject.arm)).all())
        assert all(arms[r.subject_id] == r.arm for r in rows)
        if method == "permuted_blocks":
            slots = {s.id: s for s in session.scalars(select(AllocationSlot))}
            used = [slots[r.slot_id] for r in rows]
            assert len({s.id for s in used}) == len(used)
            # The first slots of the stratum, in order, with no gap: each took the next free slot.
            assert sorted(s.position for s in used) == list(range(1, len(used) + 1))
            assert all(slots[r.slot_id].arm == r.arm for r in rows)
        else:
            assert numbers == list(range(1, len(numbers) + 1))
        assert verify_database(session).ok
    engine.dispose()
