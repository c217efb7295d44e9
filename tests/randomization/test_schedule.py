"""Visits restricted to an arm exist only for subjects allocated to it (open-label study)."""
import datetime as dt

import pytest

from ecrf.capture import visits
from ecrf.capture.matrix import subject_matrix
from ecrf.capture.schedule import schedule
from ecrf.capture.service import save_form
from ecrf.errors import NotFound
from ecrf.randomization import service
from ecrf.studies import definition, get_study

DAY0 = dt.date(2026, 1, 5)
LATE = DAY0 + dt.timedelta(days=40)  # week 2 and its diary are long overdue


@pytest.fixture
def open_study(rz_study, enrolled, db, actor):
    sid = rz_study(masking="none", stratify_by=(), arm_visits=True, block_sizes=[2])
    service.generate_list(db, actor, sid, 4)
    subjects = {}
    for n in range(3):
        subject = enrolled(sid)
        visits.set_visit_date(db, actor, sid, subject.key, "baseline", DAY0)
        subjects[n] = subject
    for n in (0, 1):
        service.randomize(db, actor, sid, subjects[n].key)
    assert {subjects[0].arm, subjects[1].arm} == {"aardvark", "zebu"}  # one block of two
    return sid, subjects


def _timing(db, sid, key):
    study = get_study(db, sid)
    page = subject_matrix(db, study, definition(study), today=LATE)
    return next(r for r in page.rows if r.subject == key).cells


def test_the_diary_belongs_to_its_arm_only(open_study, db, actor):
    sid, subjects = open_study
    spec = definition(get_study(db, sid))
    for subject in subjects.values():
        cells = _timing(db, sid, subject.key)
        rows = {r.visit: r for r in schedule(spec, {"baseline": DAY0}, subject.arm)}
        if subject.arm == "aardvark":
            assert cells["week2_diary"].timing == "overdue"
            assert rows["week2_diary"].state(LATE) == "overdue"
            assert visits.visit_forms(db, spec, subject, "week2_diary") == ("vitals",)
        else:
            # Another arm's visit, or no arm yet: never due or overdue.
            assert cells["week2_diary"].timing in ("not_applicable", "unscheduled")
            assert "week2_diary" not in rows or rows["week2_diary"].state(LATE) not in ("due", "overdue")
            with pytest.raises(NotFound):
                visits.visit_forms(db, spec, subject, "week2_diary")
            with pytest.raises(NotFound):
                save_form(db, actor, sid, subject.key, "week2_diary", "vitals", {"sbp": 120})
        assert cells["week2"].timing == "overdue"
    unrandomized = _timing(db, sid, subjects[2].key)["week2_diary"]
    assert unrandomized.timing == "unscheduled"
    other = next(s for s in subjects.values() if s.arm == "zebu")
    assert _timing(db, sid, other.key)["week2_diary"].status == "not_applicable"


def test_the_overdue_filter_ignores_other_arms_visits(open_study, db, actor):
    sid, subjects = open_study
    study = get_study(db, sid)
    spec = definition(study)
    for subject in subjects.values():
        for visit in spec.visits:
            if not visit.arms and visit.id not in ("baseline",):
                visits.set_visit_date(db, actor, sid, subject.key, visit.id, DAY0 + dt.timedelta(days=visit.day))
    overdue = {r.subject for r in subject_matrix(db, study, spec, overdue=True, today=LATE).rows}
    assert overdue == {s.key for s in subjects.values() if s.arm == "aardvark"}
