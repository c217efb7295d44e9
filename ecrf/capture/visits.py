"""A subject's visits: entering visit dates, adding unscheduled visits, and which forms a visit has.

Visit dates are clinical data: each change is audited (``Action.VISIT``, field ``/visit_date``) and
replayed by ``ecrf audit verify``. A date outside the visit's window is allowed and flagged by the
schedule (a soft check), never refused.
"""
import datetime as dt

from sqlalchemy import func, select

from audit import Action, append
from ecrf.capture.schedule import applies
from ecrf.db import write_transaction
from ecrf.errors import Invalid, NotFound
from ecrf.models import SubjectVisit

UNSCHEDULED_PREFIX = "unscheduled_"


def _parse_date(value):
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def subject_visits(session, subject):
    """{visit key: SubjectVisit} of a subject."""
    return {v.visit_key: v for v in session.scalars(
        select(SubjectVisit).where(SubjectVisit.subject_id == subject.id).order_by(SubjectVisit.id))}


def visit_forms(session, spec, subject, visit_key):
    """The forms of a visit: the schedule's, or the study's unscheduled forms for an unscheduled
    visit the subject has; NotFound otherwise."""
    visit = spec.visit(visit_key)
    if visit is not None and applies(visit, subject.arm):
        return visit.forms
    if visit is not None:
        raise NotFound(f"no visit {visit_key!r} for subject {subject.key!r}")
    if visit_key.startswith(UNSCHEDULED_PREFIX) and session.scalar(select(SubjectVisit.id).where(
            SubjectVisit.subject_id == subject.id, SubjectVisit.visit_key == visit_key)):
        return tuple(spec.document.get("unscheduled_forms", ()))
    raise NotFound(f"no visit {visit_key!r} for subject {subject.key!r}")


def _event(actor, subject, visit_key, old, new, reason):
    return actor.event(Action.VISIT, study=subject.study.key, site=subject.site.key,
                       subject=subject.key, visit=visit_key, field="/visit_date", old=old, new=new,
                       reason=reason)


def set_visit_date(session, actor, study_key, subject_key, visit_key, date, reason=None):
    """Enter or correct a visit's date (a correction needs a reason)."""
    from ecrf.capture.service import get_subject
    from ecrf.studies import definition, get_study

    when = _parse_date(date)
    if when is None:
        raise Invalid("the visit date must be a date (YYYY-MM-DD)", [("/visit_date", "is not a valid date")])
    with write_transaction(session):
        study = get_study(session, study_key)
        subject = get_subject(session, study, subject_key)
        visit_forms(session, definition(study), subject, visit_key)
        row = subject_visits(session, subject).get(visit_key)
        old = row.visit_date.isoformat() if row is not None and row.visit_date else None
        if old == when.isoformat():
            return row
        if old is not None and not (reason and reason.strip()):
            raise Invalid("a reason for change is required to correct a visit date",
                          [("/reason", "give a reason for the change")])
        if row is None:
            row = SubjectVisit(subject_id=subject.id, visit_key=visit_key)
            session.add(row)
        row.visit_date = when
        session.flush()
        append(session.connection(), _event(actor, subject, visit_key, old, when.isoformat(),
                                            reason.strip() if old and reason else None))
    return row


def add_unscheduled_visit(session, actor, study_key, subject_key, date, label=None):
    """Add an unscheduled visit (with the study's unscheduled forms) on ``date``."""
    from ecrf.capture.service import get_subject
    from ecrf.studies import definition, get_study

    when = _parse_date(date)
    if when is None:
        raise Invalid("the visit date must be a date (YYYY-MM-DD)", [("/visit_date", "is not a valid date")])
    if label is not None and len(label) > 150:
        raise Invalid("the label is too long", [("/label", "must have at most 150 characters")])
    with write_transaction(session):
        study = get_study(session, study_key)
        if not definition(study).document.get("unscheduled_forms"):
            raise Invalid("this study has no unscheduled visits (no unscheduled_forms in study.json)")
        subject = get_subject(session, study, subject_key)
        count = session.scalar(select(func.count()).select_from(SubjectVisit).where(
            SubjectVisit.subject_id == subject.id, SubjectVisit.unscheduled.is_(True)))
        key = f"{UNSCHEDULED_PREFIX}{count + 1}"
        row = SubjectVisit(subject_id=subject.id, visit_key=key, unscheduled=True, visit_date=when,
                           label=(label or "").strip() or f"Unscheduled {count + 1}")
        session.add(row)
        session.flush()
        append(session.connection(), _event(actor, subject, key, None, when.isoformat(), row.label))
    return row
