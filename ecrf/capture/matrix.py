"""The subject matrix: one row per subject, one cell per visit with its forms' status, the visit
date and whether the visit is due or overdue; filtered by site, subject state and overdue visits,
one page at a time (fast at 10,000 subjects: only the page's records are read).
"""
import dataclasses
import datetime as dt

from sqlalchemy import func, select

from ecrf.capture.schedule import anchor_visit, applies, schedule
from ecrf.models import FormRecord, Site, Subject, SubjectState, SubjectVisit

#: How a visit's cell reads when its forms are in different states: the least advanced wins.
STATUS_ORDER = ("not_started", "draft", "complete", "verified", "signed", "locked")


@dataclasses.dataclass(frozen=True)
class Cell:
    status: str
    date: dt.date | None
    timing: str          # done, due, overdue, upcoming, unscheduled, not_expected (not enrolled)
                         # or not_applicable (a visit of another arm)
    out_of_window: bool


@dataclasses.dataclass(frozen=True)
class MatrixRow:
    subject: str
    site: str
    state: str
    cells: dict  # visit id -> Cell
    #: Queries not closed: {"open": n, "answered": m} (ecrf.review.queries).
    queries: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class MatrixPage:
    rows: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self):
        return max(1, -(-self.total // self.per_page))


def visit_status(forms, records):
    """The least advanced status over a visit's forms (a form without a record is not started)."""
    statuses = [records.get(form_id, "not_started") for form_id in forms]
    if not statuses or all(s == "not_started" for s in statuses):
        return "not_started"
    least = min(statuses, key=STATUS_ORDER.index)
    return "draft" if least == "not_started" else least


def _overdue_subject_ids(session, spec, where, today):
    """Subjects with at least one overdue visit: computed from anchor dates, one query in all."""
    anchor = anchor_visit(spec)
    latest_day = {v.id: v.day + v.window_after for v in spec.visits}
    dates = {}
    arms = dict(session.execute(select(Subject.id, Subject.arm).where(*where)).all()) \
        if any(v.arms for v in spec.visits) else {}
    for subject_id, visit_key, visit_date in session.execute(
            select(SubjectVisit.subject_id, SubjectVisit.visit_key, SubjectVisit.visit_date)
            .join(Subject, Subject.id == SubjectVisit.subject_id)
            .where(*where, SubjectVisit.visit_date.is_not(None), SubjectVisit.unscheduled.is_(False))):
        dates.setdefault(subject_id, {})[visit_key] = visit_date
    overdue = set()
    for subject_id, visits in dates.items():
        if anchor.id not in visits:
            continue
        day0 = visits[anchor.id] - dt.timedelta(days=anchor.day)
        arm = arms.get(subject_id)
        for visit in spec.visits:
            last = latest_day[visit.id]
            if not applies(visit, arm):
                continue  # not this subject's visit, or not yet known to be
            if visit.id not in visits and today > day0 + dt.timedelta(days=last):
                overdue.add(subject_id)
                break
    return overdue


def subject_matrix(session, study, spec, site_ids=None, page=1, per_page=50, *, site=None, state=None,
                   overdue=False, today=None):
    """One page of the matrix; ``site_ids`` None means every site the caller may see."""
    today = today or dt.date.today()
    where = [Subject.study_id == study.id]
    if site_ids is not None:
        where.append(Subject.site_id.in_(site_ids or [-1]))
    if site is not None:
        where.append(Subject.site_id == site.id)
    if state:
        where.append(Subject.state == state)
    if overdue:
        where.append(Subject.state == SubjectState.ENROLLED)
        where.append(Subject.id.in_(_overdue_subject_ids(session, spec, where, today) or [-1]))
    total = session.scalar(select(func.count()).select_from(Subject).where(*where))
    page = max(1, min(page, max(1, -(-total // per_page))))
    subjects = session.execute(
        select(Subject.id, Subject.key, Subject.state, Subject.arm, Site.key.label("site"))
        .join(Site, Site.id == Subject.site_id).where(*where)
        .order_by(Subject.key).offset((page - 1) * per_page).limit(per_page)).all()
    ids = [s.id for s in subjects]
    statuses, dates = {}, {}
    if ids:
        for subject_id, visit_key, form_key, status in session.execute(
                select(FormRecord.subject_id, FormRecord.visit_key, FormRecord.form_key, FormRecord.status)
                .where(FormRecord.subject_id.in_(ids), FormRecord.visit_key != "")):
            statuses.setdefault(subject_id, {}).setdefault(visit_key, {})[form_key] = status
        for subject_id, visit_key, visit_date in session.execute(
                select(SubjectVisit.subject_id, SubjectVisit.visit_key, SubjectVisit.visit_date)
                .where(SubjectVisit.subject_id.in_(ids))):
            if visit_date is not None:
                dates.setdefault(subject_id, {})[visit_key] = visit_date
    from ecrf.review import queries, status

    statuses = status.overlay_matrix(session, study, ids, statuses)  # verified, signed, locked
    query_counts = queries.counts_by_subject(session, ids)
    rows = []
    for s in subjects:
        forms = statuses.get(s.id, {})
        cells = {}
        on_schedule = s.state == SubjectState.ENROLLED  # screen failures, withdrawn, done: nothing is due
        entries = {e.visit: e for e in schedule(spec, dates.get(s.id, {}), s.arm)}
        for visit in spec.visits:
            entry = entries.get(visit.id)
            if entry is None:  # a visit of another arm: this subject does not have it
                cells[visit.id] = Cell("not_applicable", None, "not_applicable", False)
                continue
            timing = entry.state(today)
            if not on_schedule and timing in ("due", "overdue"):
                timing = "not_expected"
            cells[visit.id] = Cell(visit_status(visit.forms, forms.get(visit.id, {})), entry.date,
                                   timing, entry.out_of_window)
        rows.append(MatrixRow(s.key, s.site, s.state, cells, query_counts.get(s.id, {})))
    return MatrixPage(rows, total, page, per_page)
