"""The subject matrix: one row per subject, one cell per visit, each cell the status of its forms."""
import dataclasses

from sqlalchemy import func, select

from ecrf.models import FormRecord, Site, Subject

#: How a visit's cell reads when its forms are in different states: the least advanced wins.
STATUS_ORDER = ("not_started", "draft", "complete", "verified", "signed", "locked")


@dataclasses.dataclass(frozen=True)
class MatrixRow:
    subject: str
    site: str
    state: str
    cells: dict  # visit id -> status


@dataclasses.dataclass(frozen=True)
class MatrixPage:
    rows: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self):
        return max(1, -(-self.total // self.per_page))


def visit_status(spec_visit, records):
    """The least advanced status over the visit's forms (a form without a record is not started)."""
    statuses = [records.get(form_id, "not_started") for form_id in spec_visit.forms]
    if not statuses:
        return "not_started"
    if all(s == "not_started" for s in statuses):
        return "not_started"
    least = min(statuses, key=STATUS_ORDER.index)
    return "draft" if least == "not_started" else least


def subject_matrix(session, study, spec, site_ids=None, page=1, per_page=50):
    """One page of the matrix; ``site_ids`` None means every site."""
    where = [Subject.study_id == study.id]
    if site_ids is not None:
        where.append(Subject.site_id.in_(site_ids or [-1]))
    total = session.scalar(select(func.count()).select_from(Subject).where(*where))
    page = max(1, min(page, max(1, -(-total // per_page))))
    subjects = session.execute(
        select(Subject.id, Subject.key, Subject.state, Site.key.label("site"))
        .join(Site, Site.id == Subject.site_id).where(*where)
        .order_by(Subject.key).offset((page - 1) * per_page).limit(per_page)).all()
    by_subject = {}
    if subjects:
        for subject_id, visit_key, form_key, status in session.execute(
                select(FormRecord.subject_id, FormRecord.visit_key, FormRecord.form_key, FormRecord.status)
                .where(FormRecord.subject_id.in_([s.id for s in subjects]), FormRecord.visit_key != "")):
            by_subject.setdefault(subject_id, {}).setdefault(visit_key, {})[form_key] = status
    rows = []
    for s in subjects:
        visits = by_subject.get(s.id, {})
        cells = {v.id: visit_status(v, visits.get(v.id, {})) for v in spec.visits}
        rows.append(MatrixRow(s.key, s.site, s.state, cells))
    return MatrixPage(rows, total, page, per_page)
