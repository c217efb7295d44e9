"""Source data verification: a monitor marks a form, or some of its fields, as checked against the
source documents. A later change of a verified value clears that field's verification (capture calls
``clear_changed`` in the same transaction), and the field shows as changed since verification.

Verification is per top-level field and remembers a hash of the value verified, so "verified" is
also derived: a field whose value no longer hashes the same is not verified, whatever the rows say.
"""
import hashlib

from sqlalchemy import select

from audit import Action, append_many
from ecrf.db import utcnow, write_transaction
from ecrf.definitions.model import canonical_json
from ecrf.errors import Conflict, Invalid
from ecrf.models import Verification
from ecrf.review.common import form_fields, get_record, record_where, top_field
from ecrf.studies import get_study

VERIFIED = "verified"
CHANGED = "changed"


def value_hash(value):
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def _field_value(record, pointer):
    return record.data.get(pointer[1:].replace("~1", "/").replace("~0", "~"))


def _pointer(name):
    return "/" + name.replace("~", "~0").replace("/", "~1")


def verify(session, actor, study_key, record_id, fields=None):
    """Verify the given top-level fields of a record (pointers like ``/sbp``), or (``fields`` None)
    every field that has a value. Returns the pointers newly verified; already verified ones are
    left as they are."""
    with write_transaction(session):
        study = get_study(session, study_key)
        record = get_record(session, study, record_id)
        known = {_pointer(name) for name in form_fields(record)}
        with_value = {_pointer(name) for name in record.data}
        if fields is None:
            wanted = sorted(with_value)
        else:
            wanted = sorted(set(fields))
            unknown = [f for f in wanted if f not in known]
            if unknown:
                raise Invalid("not fields of this form", [(f, "not a field of this form") for f in unknown])
            empty = [f for f in wanted if f not in with_value]
            if empty:
                raise Invalid("a field without a value cannot be verified",
                              [(f, "has no value to verify") for f in empty])
        if not wanted:
            raise Conflict("the form has no values to verify")
        active = _active(session, record)
        events, done = [], []
        where = record_where(record)
        for pointer in wanted:
            digest = value_hash(_field_value(record, pointer))
            current = active.get(pointer)
            if current is not None and current.value_hash == digest:
                continue
            if current is not None:  # a stale row (the value changed without being cleared)
                current.cleared_at = utcnow()
            session.add(Verification(record_id=record.id, field=pointer, value_hash=digest,
                                     verified_by_id=actor.user_id, verified_by_name=actor.name))
            events.append(actor.event(Action.VERIFY, field=pointer, new=VERIFIED, **where))
            done.append(pointer)
        session.flush()
        append_many(session.connection(), events)
    return done


def _active(session, record):
    return {v.field: v for v in session.scalars(select(Verification).where(
        Verification.record_id == record.id, Verification.cleared_at.is_(None)).order_by(Verification.id))}


def clear_changed(session, actor, record, changes):
    """Called by capture inside its save transaction: clear the verification of every top-level
    field that ``changes`` ([(pointer, old, new)]) touched, with an audit event for each."""
    touched = {top_field(pointer) for pointer, _, _ in changes}
    if not touched:
        return []
    rows = [v for v in session.scalars(select(Verification).where(
        Verification.record_id == record.id, Verification.cleared_at.is_(None),
        Verification.field.in_(sorted(touched))))]
    if not rows:
        return []
    now = utcnow()
    where = record_where(record)
    events = []
    for row in rows:
        row.cleared_at = now
        events.append(actor.event(Action.VERIFY, field=row.field, old=VERIFIED, new=None,
                                  reason="value changed after verification", **where))
    session.flush()
    append_many(session.connection(), events)
    return [row.field for row in rows]


def field_states(session, records):
    """{record id: {pointer: "verified" | "changed"}} for ``records``: verified while an active
    verification matches the current value; changed when the last verification was cleared or no
    longer matches. Fields never verified are absent."""
    by_id = {r.id: r for r in records}
    if not by_id:
        return {}
    rows = session.scalars(select(Verification).where(Verification.record_id.in_(list(by_id)))
                           .order_by(Verification.id))
    latest = {}
    for row in rows:
        latest[(row.record_id, row.field)] = row
    states = {}
    for (record_id, pointer), row in latest.items():
        record = by_id[record_id]
        ok = row.cleared_at is None and row.value_hash == value_hash(_field_value(record, pointer)) \
            and _field_value(record, pointer) is not None
        states.setdefault(record_id, {})[pointer] = VERIFIED if ok else CHANGED
    return states


def is_verified(record, states):
    """A record is verified when it has values and every field with a value is verified."""
    if not record.data:
        return False
    return all(states.get(_pointer(name)) == VERIFIED for name in record.data)


def verification_rows(session, record):
    """Every verification of a record, newest first (who verified what, when; cleared or not)."""
    return list(session.scalars(select(Verification).where(Verification.record_id == record.id)
                                .order_by(Verification.id.desc())))
