"""The review statuses pages show, derived from the review tables and the current data:

locked (a lock on the form, its subject or the study) > signed (a still-valid signature covering
it) > verified (every field with a value verified, unchanged since) > the record's own draft or
complete. Nothing here is stored, so nothing can disagree with the data.
"""
from sqlalchemy import select

from ecrf.models import FormRecord, Lock, LockScope, Signature, Subject, Verification
from ecrf.review import sdv, signatures


def _locked_ids(session, study, subject_ids):
    """(study locked?, locked subject ids, locked record ids)."""
    study_locked, subjects, records = False, set(), set()
    for scope, subject_id, record_id in session.execute(
            select(Lock.scope, Lock.subject_id, Lock.record_id).where(
                Lock.study_id == study.id, Lock.unlocked_at.is_(None))):
        if scope == LockScope.STUDY:
            study_locked = True
        elif scope == LockScope.SUBJECT and subject_id in subject_ids:
            subjects.add(subject_id)
        elif scope == LockScope.FORM and subject_id in subject_ids:
            records.add(record_id)
    return study_locked, subjects, records


def statuses_for_subjects(session, study, subject_ids):
    """{record id: review status} for the records of ``subject_ids`` whose status is not just the
    record's own (locked, signed or verified); records absent keep their draft/complete."""
    subject_ids = set(subject_ids)
    if not subject_ids:
        return {}
    study_locked, locked_subjects, locked_records = _locked_ids(session, study, subject_ids)
    result = {}
    signed_subjects = set(session.scalars(select(Signature.subject_id).where(
        Signature.subject_id.in_(subject_ids)).distinct()))
    verified_records = set(session.scalars(
        select(Verification.record_id).join(FormRecord, FormRecord.id == Verification.record_id)
        .where(FormRecord.subject_id.in_(subject_ids)).distinct()))
    need = signed_subjects | (set(session.scalars(select(FormRecord.subject_id).where(
        FormRecord.id.in_(verified_records)))) if verified_records else set())
    if need:
        records = list(session.scalars(select(FormRecord).where(FormRecord.subject_id.in_(need))))
        by_subject = {}
        for record in records:
            by_subject.setdefault(record.subject_id, []).append(record)
        states = sdv.field_states(session, [r for r in records if r.id in verified_records])
        for record in records:
            if record.id in verified_records and sdv.is_verified(record, states.get(record.id, {})):
                result[record.id] = "verified"
        for row in session.scalars(select(Signature).where(Signature.subject_id.in_(signed_subjects))):
            if signatures.is_valid(session, row, by_subject):
                for record in by_subject.get(row.subject_id, []):
                    if signatures.covers(row, record):
                        result[record.id] = "signed"
    if study_locked or locked_subjects or locked_records:
        query = select(FormRecord.id, FormRecord.subject_id).where(FormRecord.subject_id.in_(subject_ids))
        for record_id, subject_id in session.execute(query):
            if study_locked or subject_id in locked_subjects or record_id in locked_records:
                result[record_id] = "locked"
    return result


def record_status(session, record):
    """The review status of one record (locked, signed, verified, or its own status)."""
    subject = session.get(Subject, record.subject_id)
    return statuses_for_subjects(session, subject.study, [subject.id]).get(record.id, record.status)


def overlay_matrix(session, study, subject_ids, statuses):
    """Replace the matrix's ``{subject id: {visit: {form: status}}}`` record statuses with the
    review statuses (in place; returns ``statuses``)."""
    derived = statuses_for_subjects(session, study, subject_ids)
    if not derived:
        return statuses
    for record_id, subject_id, visit_key, form_key in session.execute(
            select(FormRecord.id, FormRecord.subject_id, FormRecord.visit_key, FormRecord.form_key)
            .where(FormRecord.id.in_(list(derived)), FormRecord.visit_key != "")):
        statuses.setdefault(subject_id, {}).setdefault(visit_key, {})[form_key] = derived[record_id]
    return statuses
