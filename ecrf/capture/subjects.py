"""Subject states: screening → enrolled or screen failure (derived from the eligibility form),
enrolled → withdrawn (with a reason) or completed. Subjects are never deleted.

A study names its eligibility form and criteria in study.json::

    "eligibility": {"form": "eligibility", "inclusion": ["inc_age", ...], "exclusion": ["exc_preg", ...]}

Inclusion criteria are boolean fields that must be true, exclusion criteria boolean fields that must
be false. Once the eligibility form is complete, the subject is enrolled when all inclusion criteria
are met and no exclusion criterion is; otherwise it is a screen failure naming the failed criteria.
"""
from audit import Action, append
from ecrf.db import write_transaction
from ecrf.errors import Conflict, Invalid
from ecrf.models import SubjectState

#: Allowed manual transitions: from state -> {to state: audit action}.
TRANSITIONS = {
    SubjectState.ENROLLED: {SubjectState.WITHDRAWN: Action.WITHDRAW,
                            SubjectState.COMPLETED: Action.SUBJECT_STATE},
}


def eligibility_outcome(spec, data):
    """``(eligible, reasons)`` for an eligibility form's data; reasons name each failed criterion."""
    rules = spec.eligibility
    form = spec.forms[rules["form"]]
    reasons = []
    for name in rules.get("inclusion", ()):
        if data.get(name) is not True:
            reasons.append(f"inclusion not met: {form.field(name).title if form.field(name) else name}")
    for name in rules.get("exclusion", ()):
        if data.get(name) is not False:
            reasons.append(f"exclusion met: {form.field(name).title if form.field(name) else name}")
    return not reasons, reasons


def _set_state(session, actor, subject, state, reason, action):
    old = subject.state
    subject.state = state
    subject.state_reason = reason
    session.flush()
    append(session.connection(), actor.event(
        action, study=subject.study.key, site=subject.site.key, subject=subject.key, field="/state",
        old=old, new=str(state), reason=reason))


def apply_eligibility(session, actor, spec, subject, form_key, data, complete):
    """Called by save_form inside its transaction: a complete eligibility form decides screening."""
    rules = spec.eligibility
    if not rules or form_key != rules["form"] or not complete or subject.state != SubjectState.SCREENING:
        return
    eligible, reasons = eligibility_outcome(spec, data)
    if eligible:
        _set_state(session, actor, subject, SubjectState.ENROLLED, "eligibility criteria met", Action.ENROL)
    else:
        _set_state(session, actor, subject, SubjectState.SCREEN_FAILED, "; ".join(reasons),
                   Action.SUBJECT_STATE)


def change_state(session, actor, study_key, subject_key, state, reason):
    """Withdraw or complete an enrolled subject; a reason is required."""
    from ecrf.capture.service import get_subject
    from ecrf.review.locks import assert_unlocked
    from ecrf.studies import get_study

    if not reason or not reason.strip():
        raise Invalid("a reason is required", [("/reason", "give a reason")])
    with write_transaction(session):
        subject = get_subject(session, get_study(session, study_key), subject_key)
        assert_unlocked(session, subject)
        try:
            state = SubjectState(state)
        except ValueError:
            raise Invalid(f"unknown state {state!r}", [("/state", "not a subject state")]) from None
        action = TRANSITIONS.get(SubjectState(subject.state), {}).get(state)
        if action is None:
            raise Conflict(f"a subject that is {subject.state.replace('_', ' ')} cannot become "
                           f"{state.replace('_', ' ')}")
        _set_state(session, actor, subject, state, reason.strip(), action)
    return subject


def list_subjects(session, study, site_ids=None, site=None):
    """The study's subjects, optionally only at ``site_ids`` (None: all) or one ``site``."""
    from sqlalchemy import select

    from ecrf.models import Subject

    query = select(Subject).where(Subject.study_id == study.id).order_by(Subject.key)
    if site_ids is not None:
        query = query.where(Subject.site_id.in_(site_ids or [-1]))
    if site is not None:
        query = query.where(Subject.site_id == site.id)
    return list(session.scalars(query))
