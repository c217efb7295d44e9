"""Electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200): the investigator signs a form, a
visit or a whole casebook by entering their password again.

A signature shows the printed name, the date and time (UTC) and its meaning, and is linked to the
exact data signed by a hash over the signed records' content. Whether it is still valid is derived:
the records it covers, as stored now, must hash to the same value. A later change to signed data
therefore invalidates it at once and visibly, with nothing to update and nothing that can go stale.
``ecrf audit verify`` proves each signature against the log (``ecrf.audit_check``).

Only complete data is signed, by one rule for every scope: each form the scope expects must have a
complete record. A form expects its own record; a visit expects every form of the visit; a casebook
expects every form of every visit the subject has reached (a visit date entered, or any data in
it) and every log entry made. ``unsigned_forms`` names what is missing, so the page can show it
before anyone types a password, and ``sign`` refuses (409) while anything is.
"""
import dataclasses
import enum
import hashlib

from sqlalchemy import select

from audit import Action, append
from ecrf.auth.login import LoginPolicy, confirm_password
from ecrf.db import write_transaction
from ecrf.definitions.model import canonical_json
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import FormRecord, RecordStatus, Signature, User
from ecrf.review.common import get_record, record_where, subject_where
from ecrf.studies import definition, get_study


class Scope(enum.StrEnum):
    FORM = "form"
    VISIT = "visit"
    CASEBOOK = "casebook"


MEANINGS = {
    Scope.FORM: "I approve the data in this form as complete and accurate",
    Scope.VISIT: "I approve the data of this visit as complete and accurate",
    Scope.CASEBOOK: "I approve the data in this casebook as complete and accurate",
}


def content_hash(entries):
    """sha256 over the signed content: ``entries`` are (record id, form, data, missing, status).

    Only what the audit log also carries is hashed, so replaying the log can recompute it.
    """
    payload = [{"record": rid, "form": form, "data": data, "missing": missing or {}, "status": status}
               for rid, form, data, missing, status in sorted(entries, key=lambda e: e[0])]
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def records_in_scope(session, subject, scope, record=None, visit_key=None):
    """The records a signature of ``scope`` covers now, in id order."""
    if scope == Scope.FORM:
        return [record]
    query = select(FormRecord).where(FormRecord.subject_id == subject.id)
    if scope == Scope.VISIT:
        query = query.where(FormRecord.visit_key == visit_key)
    return list(session.scalars(query.order_by(FormRecord.id)))


def _entries(records):
    return [(r.id, r.form_key, r.data, r.missing or {}, r.status) for r in records]


@dataclasses.dataclass(frozen=True)
class SignatureView:
    """A signature as pages show it: its row and whether the signed data is unchanged."""

    row: Signature
    valid: bool

    @property
    def status(self):
        return "valid" if self.valid else "invalidated: the signed data changed after signing"


def sign(session, actor, study_key, subject_key, scope, password, *, record_id=None, visit_key=None,
         meaning=None, policy=LoginPolicy()):
    """Sign a form (``record_id``), a visit (``visit_key``) or the subject's casebook as ``actor``.

    The password is checked first, in a transaction of its own, so that wrong attempts are audited
    and count toward the lockout even though the signature is refused (Invalid).
    """
    from ecrf.capture.service import get_subject

    scope = Scope(scope)
    meaning = (meaning or MEANINGS[scope]).strip()
    if len(meaning) > 500:
        raise Invalid("the meaning is too long", [("/meaning", "at most 500 characters")])
    signer = session.get(User, actor.user_id) if actor.user_id is not None else None
    if signer is None:
        raise Invalid("only a signed-in user can sign")
    if not confirm_password(session, signer, password, actor.context, policy, purpose="signature"):
        raise Invalid("the password is not right (or the account is locked)",
                      [("/password", "enter your own password to sign")])
    with write_transaction(session):
        study = get_study(session, study_key)
        subject = get_subject(session, study, subject_key)
        record = None
        if scope == Scope.FORM:
            record = get_record(session, study, record_id)
            if record.subject_id != subject.id:
                raise NotFound(f"no form record {record_id!r} for subject {subject.key!r}")
        elif scope == Scope.VISIT:
            visit = definition(study).visit(visit_key)
            if visit is None and not session.scalar(select(FormRecord.id).where(
                    FormRecord.subject_id == subject.id, FormRecord.visit_key == visit_key)):
                raise NotFound(f"no visit {visit_key!r}")
        records = records_in_scope(session, subject, scope, record, visit_key)
        _check_signable(session, study, subject, scope, records, visit_key)
        ids = [r.id for r in records]
        digest = content_hash(_entries(records))
        row = Signature(study_id=study.id, subject_id=subject.id, scope=scope,
                        record_id=record.id if record else None,
                        visit_key=visit_key if scope == Scope.VISIT else None,
                        signer_id=signer.id, printed_name=signer.name, meaning=meaning,
                        record_ids=ids, data_hash=digest)
        session.add(row)
        session.flush()
        where = record_where(record) if record is not None else dict(
            subject_where(subject), visit=visit_key if scope == Scope.VISIT else None)
        append(session.connection(), actor.event(Action.SIGN, new={
            "signature": row.id, "scope": str(scope), "records": ids, "hash": digest,
            "name": signer.name, "meaning": meaning}, reason=meaning, **where))
    return row


def _expected_forms(session, spec, subject, scope, records, visit_key):
    """{visit key: form ids} the scope expects a complete record of (see the module docstring)."""
    from ecrf.capture.visits import subject_visits, visit_forms

    if scope == Scope.FORM:
        return {}
    if scope == Scope.VISIT:
        reached = [visit_key]
    else:
        reached = set(subject_visits(session, subject)) | {r.visit_key for r in records if r.visit_key}
        order = {v.id: n for n, v in enumerate(spec.visits)}
        reached = sorted(reached, key=lambda key: (order.get(key, len(order)), key))
    expected = {}
    for key in reached:
        try:
            expected[key] = tuple(visit_forms(session, spec, subject, key))
        except NotFound:
            expected[key] = ()
    return expected


def unsigned_forms(session, study, subject, scope, records, visit_key=None):
    """What stops a signature of ``scope`` over ``records``: one line per expected form without a
    complete record, as "visit/form (not started)" or "visit/form (draft)", in schedule order."""
    scope = Scope(scope)
    blocking = []
    expected = _expected_forms(session, definition(study), subject, scope, records, visit_key)
    for key, forms in expected.items():
        started = {r.form_key for r in records if r.visit_key == key}
        blocking += [f"{key}/{form} (not started)" for form in forms if form not in started]
    blocking += [f"{r.visit_key or 'log'}/{r.form_key}{'' if r.seq == 1 else f' #{r.seq}'} ({r.status})"
                 for r in records if r.status != RecordStatus.COMPLETE]
    return blocking


def _check_signable(session, study, subject, scope, records, visit_key):
    if not records:
        raise Conflict(f"there is no data to sign in this {scope}")
    blocking = unsigned_forms(session, study, subject, scope, records, visit_key)
    if blocking:
        raise Conflict(f"only complete forms can be signed: this {scope} cannot be signed until every "
                       f"form is complete; not complete: {', '.join(blocking)}")


def is_valid(session, signature, records_by_subject=None):
    """Whether the records the signature covers (as stored now, including records added to its
    scope since) still hash to what was signed."""
    if records_by_subject is not None:
        records = records_by_subject.get(signature.subject_id, [])
        if signature.scope == Scope.FORM:
            records = [r for r in records if r.id == signature.record_id]
        elif signature.scope == Scope.VISIT:
            records = [r for r in records if r.visit_key == signature.visit_key]
    else:
        record = session.get(FormRecord, signature.record_id) if signature.record_id else None
        records = records_in_scope(session, signature.subject, Scope(signature.scope), record,
                                   signature.visit_key)
    return content_hash(_entries(records)) == signature.data_hash


def signatures_of(session, subject, records=None):
    """Every signature on a subject's data, newest first, each with its derived validity."""
    rows = list(session.scalars(select(Signature).where(Signature.subject_id == subject.id)
                                .order_by(Signature.id.desc())))
    if records is None:
        records = list(session.scalars(select(FormRecord).where(FormRecord.subject_id == subject.id)))
    by_subject = {subject.id: records}
    return [SignatureView(row, is_valid(session, row, by_subject)) for row in rows]


def covers(signature, record):
    """Whether a signature's scope includes ``record``."""
    if signature.subject_id != record.subject_id:
        return False
    if signature.scope == Scope.FORM:
        return signature.record_id == record.id
    if signature.scope == Scope.VISIT:
        return signature.visit_key == record.visit_key
    return True
