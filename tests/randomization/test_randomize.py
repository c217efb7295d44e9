"""Randomizing one subject through the service: the next slot of its stratum, refusals that
consume nothing, the audit event, and minimization's reproducible decisions."""
import pytest
from sqlalchemy import func, select

from audit import audit_event
from ecrf.audit_check import verify_database
from ecrf.capture.subjects import change_state
from ecrf.errors import Conflict, Invalid
from ecrf.models import Allocation, AllocationSlot
from ecrf.randomization import minimization, service
from ecrf.randomization.design import design_of
from ecrf.studies import definition, get_study


def _state(db):
    return (db.scalar(select(func.count()).select_from(Allocation)),
            db.scalar(select(func.count()).select_from(audit_event)))


def test_each_subject_takes_the_next_slot_of_its_stratum(rz_study, enrolled, db, actor):
    sid = rz_study()
    service.generate_list(db, actor, sid, 8)
    slots = {}
    for slot in db.scalars(select(AllocationSlot).order_by(AllocationSlot.position)):
        slots.setdefault(slot.stratum, []).append(slot)
    a, b, c = enrolled(sid, "01", "F"), enrolled(sid, "02", "M"), enrolled(sid, "01", "F")
    first, second, third = (service.randomize(db, actor, sid, s.key) for s in (a, b, c))
    assert (first.stratum, first.slot_id) == ("site=01; elig.sex=F", slots["site=01; elig.sex=F"][0].id)
    assert (second.stratum, second.slot_id) == ("site=02; elig.sex=M", slots["site=02; elig.sex=M"][0].id)
    assert third.slot_id == slots["site=01; elig.sex=F"][1].id
    assert (a.arm, b.arm, c.arm) == (first.arm, second.arm, third.arm)
    assert first.arm == slots["site=01; elig.sex=F"][0].arm
    event = db.execute(select(audit_event).where(audit_event.c.action == "randomize",
                                                 audit_event.c.subject == a.key)).one()
    assert (event.field, event.new_value) == ("/arm", f'"{first.arm}"')
    assert event.reason == f"randomization number {first.randomization_number}, stratum site=01; elig.sex=F"
    assert verify_database(db).ok


def test_refusals_consume_nothing(rz_study, enrolled, db, actor):
    sid = rz_study(stratify_by=("site", "elig.sex"), block_sizes=[2])
    with pytest.raises(Conflict, match="no allocation list"):
        service.randomize(db, actor, sid, enrolled(sid).key)
    service.generate_list(db, actor, sid, 2)
    screening = enrolled(sid, complete=False)
    no_sex = enrolled(sid, sex=None)
    withdrawn = enrolled(sid)
    change_state(db, actor, sid, withdrawn.key, "withdrawn", "consent withdrawn")
    before = _state(db)
    with pytest.raises(Conflict, match="screening, not enrolled"):
        service.randomize(db, actor, sid, screening.key)
    with pytest.raises(Conflict, match="withdrawn, not enrolled"):
        service.randomize(db, actor, sid, withdrawn.key)
    with pytest.raises(Invalid, match="stratification value is missing") as info:
        service.randomize(db, actor, sid, no_sex.key)
    assert info.value.errors == [("/elig.sex", "complete 'Eligibility' with 'sex' first")]
    assert _state(db) == before
    one, two, three = enrolled(sid), enrolled(sid), enrolled(sid)
    service.randomize(db, actor, sid, one.key)
    service.randomize(db, actor, sid, two.key)
    before = _state(db)
    with pytest.raises(Conflict, match="already randomized"):
        service.randomize(db, actor, sid, one.key)
    with pytest.raises(Conflict, match="no free slot left for stratum 'site=01; elig.sex=F'"):
        service.randomize(db, actor, sid, three.key)
    assert _state(db) == before
    assert three.arm is None


def test_simple_randomization_follows_the_list(rz_study, enrolled, db, actor):
    sid = rz_study(method="simple", stratify_by=())
    service.generate_list(db, actor, sid, 5)
    arms = list(db.scalars(select(AllocationSlot.arm).order_by(AllocationSlot.position)))
    got = [service.randomize(db, actor, sid, enrolled(sid).key).arm for _ in range(5)]
    assert got == arms


def test_kits_follow_their_slots(rz_study, enrolled, db, actor):
    sid = rz_study(stratify_by=(), block_sizes=[2], kits={"aardvark": ["A1", "A2", "A3"], "zebu": ["Z1", "Z2", "Z3"]})
    service.generate_list(db, actor, sid, 4)
    rows = [service.randomize(db, actor, sid, enrolled(sid).key) for _ in range(4)]
    assert sorted(r.kit for r in rows) == ["A1", "A2", "Z1", "Z2"]
    assert all(r.kit[0] == r.arm[0].upper() for r in rows)


def test_minimization_decisions_repeat_from_the_seed_and_order(rz_study, enrolled, db, actor):
    sid = rz_study(method="minimization", stratify_by=("site", "elig.sex", "elig.smoker"),
                   minimization={"p": 0.8})
    the_list, _ = service.generate_list(db, actor, sid, None)
    people = [("01", "F", False), ("02", "M", True), ("01", "M", False), ("01", "F", True),
              ("02", "F", False), ("02", "M", False), ("01", "F", False), ("02", "F", True)] * 3
    rows = [service.randomize(db, actor, sid, enrolled(sid, site, sex, smoker).key)
            for site, sex, smoker in people]
    assert [r.randomization_number for r in rows] == list(range(1, len(people) + 1))
    # Replayed from the stored seed and order alone.
    design = design_of(definition(get_study(db, sid)))
    counts = {}
    for n, row in enumerate(rows, 1):
        levels = {"site": row.factors["site"], "elig.sex": row.factors["elig.sex"],
                  "elig.smoker": row.factors["elig.smoker"]}
        arm, _ = minimization.choose_arm(design, counts, levels, minimization.decision_rng(the_list.seed, n))
        assert arm == row.arm
        minimization.add_count(counts, levels, arm)
    overall = [r.arm for r in rows]
    assert abs(overall.count("aardvark") - overall.count("zebu")) <= 4
    assert verify_database(db).ok


def test_subject_arm_is_written_by_the_allocation_service_only():
    import re
    from pathlib import Path

    import ecrf

    writers = [str(path.relative_to(Path(ecrf.__file__).parent)) for path in Path(ecrf.__file__).parent.rglob("*.py")
               if re.search(r"\.arm\s*=[^=]", path.read_text(encoding="utf-8"))]
    assert writers == ["randomization/service.py"]
