"""Locks: a data manager locks a form record, a subject or a whole study (database lock). Locked data
cannot be changed by anyone until the lock is lifted, with a reason; both are audited.

``assert_unlocked`` is what capture calls before it writes: the one place that says "locked".
"""
from sqlalchemy import and_, or_, select

from audit import Action, append
from ecrf.db import utcnow, write_transaction
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import FormRecord, Lock, LockScope, Study, Subject
from ecrf.review.common import get_record, record_where, subject_where
from ecrf.studies import get_study

MAX_REASON = 2000


def _scope_of(target):
    """(study_id, subject_id, record_id) that locks on ``target`` and above it would name."""
    if isinstance(target, FormRecord):
        subject = target.subject
        return subject.study_id, subject.id, target.id
    if isinstance(target, Subject):
        return target.study_id, target.id, None
    if isinstance(target, Study):
        return target.id, None, None
    raise TypeError(f"cannot lock a {type(target).__name__}")


def covering(study_id, subject_id=None, record_id=None):
    """The SQL condition "an active lock of this study, subject or record" (values or columns; a
    subject or record of None, or a NULL column, is not locked at its own level)."""
    cover = [Lock.scope == LockScope.STUDY]
    if subject_id is not None:
        cover.append((Lock.scope == LockScope.SUBJECT) & (Lock.subject_id == subject_id))
    if record_id is not None:
        cover.append((Lock.scope == LockScope.FORM) & (Lock.record_id == record_id))
    return and_(Lock.study_id == study_id, Lock.unlocked_at.is_(None), or_(*cover))


def active_locks(session, target):
    """The locks in force on ``target`` (a FormRecord, Subject or Study), from its own and above."""
    return list(session.scalars(select(Lock).where(covering(*_scope_of(target))).order_by(Lock.id)))


def assert_unlocked(session, target):
    """Raise Conflict when ``target`` (a record, or the subject of a record not yet created, or a
    study) is locked at its own level or above."""
    locks = active_locks(session, target)
    if locks:
        lock = locks[0]
        raise Conflict(f"this {lock.scope if lock.scope != LockScope.FORM else 'form'} is locked "
                       f"(by {lock.locked_by}); a data manager must unlock it first")


def _target(session, study, scope, subject_key=None, record_id=None):
    from ecrf.capture.service import get_subject

    scope = LockScope(scope)
    if scope == LockScope.FORM:
        record = get_record(session, study, record_id)
        return scope, record, {"subject_id": record.subject_id, "record_id": record.id}, record_where(record)
    if scope == LockScope.SUBJECT:
        subject = get_subject(session, study, subject_key)
        return scope, subject, {"subject_id": subject.id}, subject_where(subject)
    return scope, study, {}, {"study": study.key}


def _own_lock(session, study, scope, ids):
    return session.scalar(select(Lock).where(
        Lock.study_id == study.id, Lock.scope == scope, Lock.unlocked_at.is_(None),
        Lock.subject_id == ids["subject_id"] if "subject_id" in ids else Lock.subject_id.is_(None),
        Lock.record_id == ids["record_id"] if "record_id" in ids else Lock.record_id.is_(None)))


def lock(session, actor, study_key, scope, *, subject_key=None, record_id=None, reason=None):
    """Lock a form record (``record_id``), a subject (``subject_key``) or the study."""
    reason = (reason or "").strip() or None
    if reason and len(reason) > MAX_REASON:
        raise Invalid("the reason is too long", [("/reason", f"at most {MAX_REASON} characters")])
    with write_transaction(session):
        study = get_study(session, study_key)
        scope, target, ids, where = _target(session, study, scope, subject_key, record_id)
        if _own_lock(session, study, scope, ids) is not None:
            raise Conflict(f"this {scope} is already locked")
        row = Lock(study_id=study.id, scope=scope, locked_by=actor.name, reason=reason, **ids)
        session.add(row)
        session.flush()
        append(session.connection(), actor.event(Action.LOCK, new={"lock": row.id, "scope": str(scope)},
                                                 reason=reason, **where))
    return row


def unlock(session, actor, study_key, scope, *, subject_key=None, record_id=None, reason=None):
    """Lift the lock on a form record, a subject or the study; a reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("a reason is required to unlock", [("/reason", "give a reason")])
    if len(reason) > MAX_REASON:
        raise Invalid("the reason is too long", [("/reason", f"at most {MAX_REASON} characters")])
    with write_transaction(session):
        study = get_study(session, study_key)
        scope, target, ids, where = _target(session, study, scope, subject_key, record_id)
        row = _own_lock(session, study, scope, ids)
        if row is None:
            raise NotFound(f"this {scope} is not locked")
        row.unlocked_at, row.unlocked_by, row.unlock_reason = utcnow(), actor.name, reason
        session.flush()
        append(session.connection(), actor.event(Action.UNLOCK, old={"lock": row.id, "scope": str(scope)},
                                                 reason=reason, **where))
    return row


def lock_history(session, study, subject=None, record=None):
    """Every lock (lifted ones too) on the study, or on a subject or record and what covers them."""
    where = [Lock.study_id == study.id]
    if record is not None:
        where.append(or_(Lock.scope == LockScope.STUDY,
                         (Lock.scope == LockScope.SUBJECT) & (Lock.subject_id == record.subject_id),
                         Lock.record_id == record.id))
    elif subject is not None:
        where.append(or_(Lock.scope == LockScope.STUDY, Lock.subject_id == subject.id))
    else:
        where.append(Lock.scope == LockScope.STUDY)
    return list(session.scalars(select(Lock).where(*where).order_by(Lock.id.desc())))
