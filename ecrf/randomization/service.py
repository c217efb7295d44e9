"""The one writer of allocations: lists, randomization, emergency unblinding (DESIGN.md 1, 2, 8).

Each function writes its rows and its audit events in one transaction. Allocation tables only
grow: randomizing INSERTs an allocation naming the next free slot of the subject's stratum, and the
unique constraints on (study, randomization number), subject and slot decide a race: the loser's
INSERT fails inside a savepoint and it takes the next slot, so two sites randomizing at the same
instant never share a slot and nothing is consumed by a refused request.
"""
import csv
import dataclasses
import io
import json

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from audit import Action, append
from ecrf.audit_view import neutralise, unneutralise
from ecrf.db import utcnow, write_transaction
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import (Allocation, AllocationList, AllocationSlot, FormRecord, RecordStatus, Site,
                         Subject, SubjectState, Unblinding)
from ecrf.randomization import lists, minimization
from ecrf.randomization.design import design_of, strata, stratum_key, value_text

#: How many slots (or numbers) one randomization tries before it answers 409.
ATTEMPTS = 50
#: Slots per stratum ``generate`` makes when no size is given.
DEFAULT_SIZE = 100
#: The most slots per stratum one list may hold.
MAX_SIZE = 100_000
CSV_COLUMNS = ("randomization_number", "stratum", "position", "block", "arm", "kit")
_COMPLETE = (RecordStatus.COMPLETE, RecordStatus.VERIFIED, RecordStatus.SIGNED, RecordStatus.LOCKED)


def _study_and_design(session, study_key):
    from ecrf.studies import definition, get_study

    study = get_study(session, study_key)
    spec = definition(study)
    design = design_of(spec)
    if design is None:
        raise Conflict(f"study {study.key!r} has no randomization section in study.json")
    return study, spec, design


def _site_keys(session, study):
    return list(session.scalars(select(Site.key).where(Site.study_id == study.id).order_by(Site.key)))


def allocation_list(session, study):
    return session.scalar(select(AllocationList).where(AllocationList.study_id == study.id))


def allocation_of(session, subject):
    """The subject's Allocation, or None before randomization."""
    return session.scalar(select(Allocation).where(Allocation.subject_id == subject.id))


def _event(actor, study, action, field, new, reason, subject=None, visit=None):
    return actor.event(action, study=study.key, site=subject.site.key if subject else None,
                       subject=subject.key if subject else None, visit=visit, field=field, new=new,
                       reason=reason)


# --- the list ----------------------------------------------------------------------------------------

def generate_list(session, actor, study_key, size=None):
    """Create the study's concealed list from a fresh secure seed; returns (list, slot count).

    ``size`` is the least number of slots per stratum (whole blocks). Minimization stores only the
    seed its coin draws come from.
    """
    size = DEFAULT_SIZE if size is None else size
    if not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise Invalid(f"the size must be a whole number from 1 to {MAX_SIZE}", [("/size", "out of range")])
    with write_transaction(session):
        study, spec, design = _study_and_design(session, study_key)
        if allocation_list(session, study) is not None:
            raise Conflict(f"study {study.key!r} already has an allocation list")
        seed = lists.new_seed()
        params = dict(design.parameters(), size=size)
        slots = []
        if design.method != "minimization":
            params["strata"] = strata(spec, design, _site_keys(session, study))
            slots = lists.derive_slots(seed, design, params["strata"], size)
        row = _store_list(session, study, design.method, seed, params, "generated", actor, slots)
        append(session.connection(), _event(
            actor, study, Action.RANDOMIZE, "/allocation_list",
            {"method": design.method, "slots": len(slots), "source": "generated"},
            "allocation list generated"))
    return row, len(slots)


def _store_list(session, study, method, seed, params, source, actor, slots):
    row = AllocationList(study_id=study.id, method=method, seed=seed, parameters=params, source=source,
                         created_by=actor.name)
    session.add(row)
    session.flush()
    if slots:
        session.execute(AllocationSlot.__table__.insert(), [
            {"list_id": row.id, "study_id": study.id, "stratum": s.stratum, "position": s.position,
             "randomization_number": s.randomization_number, "arm": s.arm, "kit": s.kit, "block": s.block}
            for s in slots])
    return row


def export_list(session, actor, study_key, out):
    """Write the list (unblinded) with its seed and parameters as CSV to ``out``; audited."""
    with write_transaction(session):
        study, _, design = _study_and_design(session, study_key)
        row = allocation_list(session, study)
        if row is None:
            raise Conflict(f"study {study.key!r} has no allocation list")
        out.write(f"# ecrf allocation list of study {study.key}\n")
        out.write(f"# source: {row.source}\n")
        out.write(f"# seed: {row.seed or ''}\n")
        out.write(f"# parameters: {json.dumps(row.parameters, sort_keys=True)}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        count = 0
        for slot in session.scalars(select(AllocationSlot).where(AllocationSlot.list_id == row.id)
                                    .order_by(AllocationSlot.randomization_number)):
            writer.writerow([slot.randomization_number, neutralise(slot.stratum), slot.position,
                             "" if slot.block is None else slot.block, neutralise(slot.arm),
                             neutralise(slot.kit or "")])
            count += 1
        append(session.connection(), _event(actor, study, Action.EXPORT, "/allocation_list",
                                            {"slots": count, "format": "csv"}, "allocation list exported"))
    return count


def read_csv(text):
    """(header {key: value}, rows as dicts with their line numbers) of an exported list."""
    header, body = {}, []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
        else:
            body.append(line)
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    rows = [(n + 2 + len(header), {k: unneutralise(v) if isinstance(v, str) else v for k, v in r.items()})
            for n, r in enumerate(reader)]
    return header, rows, reader.fieldnames or []


def import_list(session, actor, study_key, text):
    """Load a list made elsewhere (the export's CSV format); refused whole on any bad row."""
    _, rows, columns = read_csv(text)
    errors = [("/columns", f"column {c!r} is missing") for c in ("randomization_number", "stratum", "arm")
              if c not in columns]
    if errors:
        raise Invalid("the file is not an allocation list", errors)
    with write_transaction(session):
        study, spec, design = _study_and_design(session, study_key)
        if design.method == "minimization":
            raise Conflict("minimization allocates without a list: nothing to import")
        if allocation_list(session, study) is not None:
            raise Conflict(f"study {study.key!r} already has an allocation list")
        known = set(strata(spec, design, _site_keys(session, study)))
        slots, numbers, positions, errors = [], set(), {}, []
        for line, raw in rows:
            where = f"line {line}"
            try:
                number = int(raw["randomization_number"])
                if number < 1:
                    raise ValueError
            except (TypeError, ValueError):
                errors.append((where, "randomization_number is not a positive whole number"))
                continue
            if number in numbers:
                errors.append((where, f"duplicate randomization number {number}"))
            numbers.add(number)
            stratum = raw.get("stratum") or ""
            if stratum not in known:
                errors.append((where, f"unknown stratum {stratum!r}"))
            if raw.get("arm") not in design.arms:
                errors.append((where, f"unknown arm {raw.get('arm')!r}"))
            position = positions[stratum] = positions.get(stratum, 0) + 1
            if raw.get("position"):
                try:
                    position = int(raw["position"])
                except ValueError:
                    errors.append((where, "position is not a whole number"))
            kit = (raw.get("kit") or "").strip() or None
            slots.append(lists.Slot(stratum, position, number, raw.get("arm") or "", None, kit))
        seen = set()
        for slot in slots:
            if (slot.stratum, slot.position) in seen:
                errors.append(("/rows", f"position {slot.position} of stratum {slot.stratum!r} is given twice"))
            seen.add((slot.stratum, slot.position))
        if not slots:
            errors.append(("/rows", "the file holds no slots"))
        if errors:
            raise Invalid(f"the list was not imported: {len(errors)} problem(s)", errors)
        params = dict(design.parameters(), strata=sorted(known))
        row = _store_list(session, study, design.method, None, params, "imported", actor, slots)
        append(session.connection(), _event(
            actor, study, Action.RANDOMIZE, "/allocation_list",
            {"method": design.method, "slots": len(slots), "source": "imported"}, "allocation list imported"))
    return row, len(slots)


# --- randomizing a subject ---------------------------------------------------------------------------

def subject_levels(session, spec, design, subject):
    """{factor: value text} of the subject; Invalid naming every factor that has no value yet."""
    values, missing = {}, []
    visit_days = {v.id: v.day for v in spec.visits}
    limit = visit_days.get(design.visit)
    for factor in design.factors:
        if factor == "site":
            values[factor] = subject.site.key
            continue
        form_id, field = factor.split(".", 1)
        visits = [v.id for v in spec.visits if form_id in v.forms and (limit is None or v.day <= limit)]
        records = session.scalars(select(FormRecord).where(
            FormRecord.subject_id == subject.id, FormRecord.form_key == form_id,
            FormRecord.visit_key.in_(visits), FormRecord.status.in_([str(s) for s in _COMPLETE])))
        latest = max(records, key=lambda r: visit_days[r.visit_key], default=None)
        if latest is None or latest.data.get(field) is None:
            missing.append((f"/{factor}", f"complete {spec.forms[form_id].title!r} with {field!r} first"))
        else:
            values[factor] = value_text(latest.data[field])
    if missing:
        raise Invalid("a stratification value is missing: " + "; ".join(m for _, m in missing), missing)
    return values


def randomize(session, actor, study_key, subject_key):
    """Allocate the subject: the next slot of its stratum (or a minimization decision); returns the
    Allocation. Refused with nothing consumed when the subject is not enrolled (409), already
    randomized (409), lacks a stratification value (422), or its stratum's slots are used up (409)."""
    from ecrf.capture.service import get_subject
    from ecrf.review.locks import assert_unlocked

    with write_transaction(session):
        study, spec, design = _study_and_design(session, study_key)
        subject = get_subject(session, study, subject_key)
        # Serialises two randomizations of one subject on PostgreSQL (SQLite's writer lock already does).
        session.execute(select(Subject.id).where(Subject.id == subject.id).with_for_update())
        assert_unlocked(session, subject)
        if subject.state != SubjectState.ENROLLED:
            raise Conflict(f"subject {subject.key} is {subject.state.replace('_', ' ')}, not enrolled: "
                           "only enrolled subjects are randomized")
        if allocation_of(session, subject) is not None:
            raise Conflict(f"subject {subject.key} is already randomized")
        the_list = allocation_list(session, study)
        if the_list is None:
            raise Conflict("there is no allocation list yet (ecrf randomization generate or import)")
        levels = subject_levels(session, spec, design, subject)
        stratum = stratum_key(design.factors, levels) if design.method != "minimization" else ""
        for _ in range(ATTEMPTS):
            if design.method == "minimization":
                number, arm, slot, kit = _minimization_choice(session, study, design, the_list, levels)
            else:
                slot = session.scalar(
                    select(AllocationSlot).where(
                        AllocationSlot.list_id == the_list.id, AllocationSlot.stratum == stratum,
                        ~select(Allocation.id).where(Allocation.slot_id == AllocationSlot.id).exists())
                    .order_by(AllocationSlot.position).limit(1)
                    # PostgreSQL: a slot another randomization is taking right now is skipped rather
                    # than waited for (a row lock, not a change: the slot row is never updated).
                    .with_for_update(skip_locked=True))
                if slot is None:
                    raise Conflict(f"the allocation list has no free slot left for stratum "
                                   f"{stratum or 'all subjects'!r}")
                number, arm, kit = slot.randomization_number, slot.arm, slot.kit
            row = Allocation(study_id=study.id, subject_id=subject.id, slot_id=slot.id if slot else None,
                             stratum=stratum, factors=levels, randomization_number=number, arm=arm, kit=kit,
                             randomized_at=utcnow(), randomized_by=actor.name)
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
            except IntegrityError:
                continue  # another randomization took that slot (number) first: try the next one
            break
        else:
            raise Conflict("the allocation list is busy: try again")
        subject.arm = arm  # Subject.arm changes here only
        session.flush()
        append(session.connection(), _event(
            actor, study, Action.RANDOMIZE, "/arm", arm,
            f"randomization number {number}" + (f", stratum {stratum}" if stratum else ""),
            subject=subject, visit=design.visit))
    return row


def _minimization_choice(session, study, design, the_list, levels):
    counts = {}
    for factors, arm in session.execute(select(Allocation.factors, Allocation.arm)
                                        .where(Allocation.study_id == study.id)):
        minimization.add_count(counts, {f: factors.get(f) for f in design.factors}, arm)
    number = (session.scalar(select(func.max(Allocation.randomization_number))
                             .where(Allocation.study_id == study.id)) or 0) + 1
    arm, _ = minimization.choose_arm(design, counts, levels, minimization.decision_rng(the_list.seed, number))
    return number, arm, None, None


# --- who may see, and emergency unblinding -----------------------------------------------------------

def unblinded_for(session, user, subject):
    """The user's emergency unblinding of this subject, or None."""
    if user is None or subject is None:
        return None
    return session.scalar(select(Unblinding).where(Unblinding.subject_id == subject.id,
                                                   Unblinding.user_id == user.id).limit(1))


def unblindings(session, subject):
    return list(session.scalars(select(Unblinding).where(Unblinding.subject_id == subject.id)
                                .order_by(Unblinding.id)))


def unblind(session, actor, user, study_key, subject_key, reason):
    """Reveal one subject's arm to ``user`` (who re-entered their password: the caller checked it);
    recorded with who, when and why. Returns the Unblinding."""
    from ecrf.capture.service import get_subject
    from ecrf.studies import get_study

    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise Invalid("a reason is required to unblind", [("/reason", "give the reason")])
    if len(reason) > 2000:
        raise Invalid("the reason is too long", [("/reason", "at most 2000 characters")])
    with write_transaction(session):
        study = get_study(session, study_key)
        subject = get_subject(session, study, subject_key)
        allocation = allocation_of(session, subject)
        if allocation is None:
            raise Conflict(f"subject {subject.key} is not randomized: there is no arm to reveal")
        row = Unblinding(study_id=study.id, subject_id=subject.id, user_id=user.id, reason=reason,
                         unblinded_at=utcnow())
        session.add(row)
        session.flush()
        append(session.connection(), _event(actor, study, Action.UNBLIND, "/arm", allocation.arm, reason,
                                            subject=subject))
    return row


# --- reports for unblinded readers -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Balance:
    arms: tuple
    #: {stratum: {arm: n}} and {arm: n}; minimization adds {factor: {level: {arm: n}}}.
    strata: dict
    overall: dict
    factors: dict


def balance(session, study):
    """Counts per arm per stratum and overall (and per factor level)."""
    from ecrf.studies import definition

    design = design_of(definition(study))
    arms = design.arms if design else ()
    per_stratum, overall, factors = {}, dict.fromkeys(arms, 0), {}
    for stratum, levels, arm in session.execute(
            select(Allocation.stratum, Allocation.factors, Allocation.arm).where(Allocation.study_id == study.id)):
        row = per_stratum.setdefault(stratum, dict.fromkeys(arms, 0))
        row[arm] = row.get(arm, 0) + 1
        overall[arm] = overall.get(arm, 0) + 1
        minimization.add_count(factors, levels, arm)
    return Balance(arms, dict(sorted(per_stratum.items())), overall, factors)


def allocations(session, study, site_ids=None):
    """Every allocation of the study (at ``site_ids``, None: all), in randomization order."""
    query = (select(Allocation).join(Subject, Subject.id == Allocation.subject_id)
             .where(Allocation.study_id == study.id).order_by(Allocation.randomization_number))
    if site_ids is not None:
        query = query.where(Subject.site_id.in_(site_ids or [-1]))
    return list(session.scalars(query))


def get_allocation_subject(session, study, subject_key):
    from ecrf.capture.service import get_subject

    subject = get_subject(session, study, subject_key)
    allocation = allocation_of(session, subject)
    if allocation is None:
        raise NotFound(f"subject {subject_key} is not randomized")
    return subject, allocation


def emergency_unblind(session, actor, user, study_key, subject_key, reason, password, policy, settings):
    """The whole emergency unblinding: the user's password again (a wrong one is audited and counts
    toward the lockout, nothing else happens), ``unblind``, then the contacts' e-mail.
    Returns (Unblinding, Delivery or None)."""
    from ecrf.auth.login import confirm_password
    from ecrf.randomization.notify import notify_unblinding
    from ecrf.studies import definition, get_study

    if not isinstance(password, str) or not password:
        raise Invalid("enter your password to unblind", [("/password", "enter your password")])
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("a reason is required to unblind", [("/reason", "give the reason")])
    if not confirm_password(session, user, password, actor.context, policy, purpose="emergency unblinding"):
        raise Invalid("the password is not right (or the account is locked)",
                      [("/password", "the password is not right")])
    row = unblind(session, actor, user, study_key, subject_key, reason)
    study = get_study(session, study_key)
    subject = session.get(Subject, row.subject_id)
    delivery = notify_unblinding(session, actor, definition(study), subject, user, row, settings)
    return row, delivery


def subject_summary(session, viewer, study, subject):
    """What a viewer may know of a subject's randomization, as JSON: number and time for everyone who
    sees the subject; the arm (id and label) only when ``can_see_arm`` allows it for this subject."""
    from ecrf.randomization.blinding import arm_label, can_see_arm

    allocation = allocation_of(session, subject)
    marks = unblindings(session, subject)
    out = {"randomized": allocation is not None, "emergency_unblinded": bool(marks)}
    if allocation is not None:
        out["randomization_number"] = allocation.randomization_number
        out["randomized_at"] = allocation.randomized_at.isoformat()
        if can_see_arm(session, viewer, study, subject):
            out["arm"] = allocation.arm
            out["arm_label"] = arm_label(study, allocation.arm)
            if allocation.kit:
                out["kit"] = allocation.kit
    return out
