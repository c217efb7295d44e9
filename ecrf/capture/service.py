"""Capture services: enrol subjects and save form records. Each call is one transaction that writes
the change and its audit events together (``write_transaction``); views, the API and the CLI call
these and nothing else to change clinical data.
"""
import dataclasses
import functools
import re

from sqlalchemy import and_, bindparam, func, null, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import flag_modified

from audit import Action, append, append_many
from ecrf.capture.subjects import apply_eligibility
from ecrf.capture.validate import unstorable, validate_document
from ecrf.capture.visits import visit_forms
from ecrf.db import utcnow, write_transaction
from ecrf.errors import Conflict, Invalid, NotFound, PreconditionRequired
from ecrf.models import (FormRecord, Lock, RecordStatus, Site, Study, StudyVersion, StudyVersionForm,
                         Subject, SubjectState)
from ecrf.review import locks, sdv
from ecrf.review import queries as review_queries
from ecrf.rules.derive import applicable_flags, derive, hidden_fields, soft_checks
from ecrf.rules.predicate import json_equal
from ecrf.studies import definition, definition_of, get_site, get_study

DEFAULT_ID_TEMPLATE = "{site}-{n:03}"
SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
#: ``{n}`` or ``{n:03}`` in an id template.
_NUMBER = re.compile(r"\{n(?::0?(\d))?\}")


def _subject_where(subject):
    return {"study": subject.study.key, "site": subject.site.key, "subject": subject.key}


def next_subject_id(session, study, site, template):
    """The next free id from the study's template: ``{site}`` and ``{n}`` or ``{n:03}``.

    ``n`` comes from the site's counter, bumped with UPDATE ... RETURNING: on PostgreSQL that holds
    the site's row until the transaction ends, so parallel enrolments at one site take turns instead
    of both generating the same id (SQLite's write lock does the same). An id already taken (given
    by hand) is skipped. The counter rolls back with a failed enrolment, so numbers have no gaps.
    """
    while True:
        n = session.execute(update(Site).where(Site.id == site.id)
                            .values(subject_counter=Site.subject_counter + 1)
                            .returning(Site.subject_counter)).scalar_one()
        candidate = template.replace("{site}", site.key)
        candidate = _NUMBER.sub(lambda m: str(n).zfill(int(m.group(1) or 0)), candidate)
        if not session.scalar(select(Subject.id).where(Subject.study_id == study.id,
                                                       Subject.key == candidate)):
            return candidate
        if not _NUMBER.search(template):
            raise Conflict(f"subject {candidate!r} exists and the study's id template has no {{n}}; "
                           "give the subject id")


def enrol_subject(session, actor, study_key, site_key, subject_key=None):
    """Create a subject at a site. A study without eligibility criteria enrols at once; one with
    criteria starts the subject in screening until its eligibility form is complete."""
    with write_transaction(session):
        study = get_study(session, study_key)
        site = get_site(session, study, site_key)
        locks.assert_unlocked(session, study)
        spec = definition(study)
        subjects = spec.document.get("subjects", {})
        if subject_key is None or subject_key == "":
            subject_key = next_subject_id(session, study, site,
                                          subjects.get("id_template", DEFAULT_ID_TEMPLATE))
        if not isinstance(subject_key, str) or not SUBJECT_ID.match(subject_key):
            raise Invalid("a subject id is 1-64 letters, digits, _ or -",
                          [("/subject", "not a valid subject id")])
        pattern = subjects.get("id_pattern")
        if pattern and not re.fullmatch(pattern, subject_key):
            raise Invalid(f"subject id {subject_key!r} does not follow the study's pattern {pattern}",
                          [("/subject", "does not follow the study's pattern")])
        if session.scalar(select(Subject.id).where(Subject.study_id == study.id, Subject.key == subject_key)):
            raise Conflict(f"subject {subject_key!r} already exists in study {study_key!r}")
        state = SubjectState.SCREENING if spec.eligibility else SubjectState.ENROLLED
        subject = Subject(study_id=study.id, site_id=site.id, key=subject_key, state=state)
        session.add(subject)
        session.flush()
        append(session.connection(), actor.event(
            Action.ENROL, study=study.key, site=site.key, subject=subject_key, field="/state",
            new=str(state)))
    return subject


def get_subject(session, study, key):
    subject = session.scalar(select(Subject).where(Subject.study_id == study.id, Subject.key == key))
    if subject is None:
        raise NotFound(f"no subject {key!r} in study {study.key!r}")
    return subject


def get_record(session, subject, visit_key, form_key, seq=1):
    return session.scalar(select(FormRecord).where(
        FormRecord.subject_id == subject.id, FormRecord.visit_key == visit_key,
        FormRecord.form_key == form_key, FormRecord.seq == seq))


@dataclasses.dataclass(frozen=True)
class _Target:
    """What a save needs before it can check anything, read in one query."""

    study: Study
    #: The frozen definition of the study's current version.
    spec: object
    subject: Subject
    #: Held so that ``subject.site`` is found in the session, not loaded again.
    site: Site
    record: FormRecord | None
    #: The form version of ``form_key`` in the study's current version (None: not in it).
    form_version_id: int | None
    #: Whether an active lock covers the study, the subject or the record.
    locked: bool
    #: The next entry number of a log form (when a new entry was asked for).
    next_seq: int | None


@functools.cache
def _target_query(new_entry):
    """The query of ``_load_target``, built once (building it costs more than running it)."""
    latest = aliased(StudyVersion)
    form_key, visit_key = bindparam("form_key"), bindparam("visit_key")
    form_version_id = (select(StudyVersionForm.form_version_id).where(
        StudyVersionForm.study_version_id == StudyVersion.id, StudyVersionForm.form_key == form_key)
        .scalar_subquery())
    locked = select(Lock.id).where(
        locks.covering(Study.id, Subject.id, None if new_entry else FormRecord.id)).exists()
    if new_entry:
        record = null()
        next_seq = (select(func.coalesce(func.max(FormRecord.seq), 0) + 1).where(
            FormRecord.subject_id == Subject.id, FormRecord.visit_key == visit_key,
            FormRecord.form_key == form_key).scalar_subquery())
    else:
        record, next_seq = FormRecord, null()
    query = (select(Subject, Study, Site, StudyVersion, record, form_version_id, locked, next_seq)
             .join(Study, Study.id == Subject.study_id).join(Site, Site.id == Subject.site_id)
             .outerjoin(StudyVersion, and_(
                 StudyVersion.study_id == Study.id,
                 StudyVersion.number == select(func.max(latest.number))
                 .where(latest.study_id == Study.id).scalar_subquery()))
             .where(Study.key == bindparam("study_key"), Subject.key == bindparam("subject_key")))
    if not new_entry:
        query = query.outerjoin(FormRecord, and_(
            FormRecord.subject_id == Subject.id, FormRecord.visit_key == visit_key,
            FormRecord.form_key == form_key, FormRecord.seq == bindparam("seq")))
    return query


def _load_target(session, study_key, subject_key, visit_key, form_key, seq):
    """Study, its current version, subject (with its site), the record (``seq`` None: a new log
    entry, none), the form version id and whether a lock covers any of them: one query, where a save
    would otherwise make seven. An unknown study or subject raises the same NotFound as
    ``get_study``/``get_subject``."""
    row = None
    if isinstance(study_key, str) and isinstance(subject_key, str):
        row = session.execute(_target_query(seq is None), {
            "study_key": study_key, "subject_key": subject_key, "visit_key": visit_key,
            "form_key": form_key, "seq": seq}).first()
    if row is None:
        get_subject(session, get_study(session, study_key), subject_key)  # raises the right NotFound
        raise NotFound(f"no subject {subject_key!r} in study {study_key!r}")
    subject, study, site, version, record, form_version_id, locked, next_seq = row
    if version is None:
        raise NotFound(f"study {study.key!r} has no loaded version")
    return _Target(study, definition_of(version), subject, site, record, form_version_id,
                   bool(locked), next_seq)


def _leaves(value, path=""):
    """Flatten a document into {pointer: leaf}. Arrays of objects (repeating groups) are one leaf
    when their rows change in number, so removing a row replays exactly."""
    if isinstance(value, dict) and value:
        out = {}
        for key, sub in value.items():
            out.update(_leaves(sub, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"))
        return out
    return {path: value}


def diff_documents(old, new):
    """[(pointer, old, new)] turning ``old`` into ``new``: None on one side means absent."""
    changes = []
    for key in sorted(set(old) | set(new), key=lambda k: (k not in new, k)):
        before, after = old.get(key), new.get(key)
        if json_equal(before, after):
            continue
        ptr = "/" + key.replace("~", "~0").replace("/", "~1")
        rows_before = isinstance(before, list) and before and all(isinstance(r, dict) for r in before)
        rows_after = isinstance(after, list) and after and all(isinstance(r, dict) for r in after)
        if rows_before and rows_after and len(before) == len(after):
            for i, (a, b) in enumerate(zip(before, after, strict=True)):
                la, lb = _leaves(a, f"{ptr}/{i}"), _leaves(b, f"{ptr}/{i}")
                for p in sorted(set(la) | set(lb)):
                    if not json_equal(la.get(p), lb.get(p)):
                        changes.append((p, la.get(p), lb.get(p)))
        elif isinstance(before, dict) and isinstance(after, dict) and before and after:
            la, lb = _leaves(before, ptr), _leaves(after, ptr)
            for p in sorted(set(la) | set(lb)):
                if not json_equal(la.get(p), lb.get(p)):
                    changes.append((p, la.get(p), lb.get(p)))
        else:
            changes.append((ptr, before, after))
    return changes


class StaleVersion(Conflict):
    """A save based on an older version of a record. Carries the record as it is now, so a page can
    show both values of each field and keep what its user typed."""

    def __init__(self, message, record):
        super().__init__(message)
        self.version = record.version
        self.data = dict(record.data or {})
        self.missing = dict(record.missing or {})
        self.status = record.status


@dataclasses.dataclass(frozen=True)
class SaveResult:
    record: FormRecord
    changes: list
    created: bool
    #: [(pointer, old flag, new flag)] of missing-data flags set, changed or removed.
    flag_changes: list = dataclasses.field(default_factory=list)
    #: {pointer: [message]}: the soft checks failing after this save (each is an open query).
    checks: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A submission made ready to store: the derived document, its flags, and every problem."""

    document: dict
    missing: dict
    errors: list


#: Longest reason for change accepted (it goes to the audit log with every changed field).
MAX_REASON = 2000


def prepare(form_def, data, complete, *, missing=None, stored=None, stored_missing=None):
    """Derive and validate a submission against a form version, without touching the database.

    * Calculated fields are recomputed and fields whose ``show_if`` fails are cleared. A value sent
      for such a hidden field is refused unless it is the value already stored (a value left behind
      when the field became hidden is cleared, and the clearing is audited as any change).
    * ``missing`` (None: keep ``stored_missing``) gives the missing-data flags; a kept flag is
      dropped when its field now has a value or is hidden, a new flag on a hidden field is refused.
    """
    stored = stored or {}
    stored_missing = stored_missing or {}
    errors = []
    if not isinstance(data, dict):
        return Prepared({}, {}, [("", "the form data must be an object")])
    if missing is not None and not isinstance(missing, dict):
        return Prepared({}, {}, [("", "the missing-data flags must be an object")])
    data = _without_nulls(data)
    hidden_list = hidden_fields(form_def, data)
    hidden = set(hidden_list)
    calculated = {f.name for f in form_def.fields if "calculate" in f.ecrf}
    for name in sorted(hidden - calculated):
        if name in data and not (name in stored and json_equal(data[name], stored[name])):
            errors.append((_pointer(name), "this field does not apply to the answers given; leave it empty"))
    if missing is None:
        flags = applicable_flags(form_def, data, stored_missing, hidden=hidden_list)
    else:
        flags = {}
        for key, flag in missing.items():
            if isinstance(flag, dict) and isinstance(flag.get("reason"), str):
                flag = dict(flag, reason=flag["reason"].strip())
            name = key[1:] if isinstance(key, str) and key.startswith("/") else None
            if name in hidden and name not in calculated:
                if stored_missing.get(key) != flag:
                    errors.append((key, "this field does not apply to the answers given; do not "
                                        "mark it as missing"))
                continue
            flags[key] = flag
    document = derive(form_def, data, hidden=hidden_list)
    errors.extend(validate_document(form_def, document, complete, missing=flags))
    return Prepared(document, flags, sorted(set(errors)))


def _without_nulls(data):
    """``data`` with null values left out, also in the rows of repeating groups: an empty field is
    an absent key (a missing value is a flag, never a magic value), so null clears a field."""
    out = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            value = [{k: v for k, v in row.items() if v is not None} for row in value]
        out[key] = value
    return out


def _pointer(name):
    return "/" + str(name).replace("~", "~0").replace("/", "~1")


def _by_field(checks):
    """[(pointer, message)] → {pointer: [message]} (each message once)."""
    out = {}
    for pointer, message in checks:
        messages = out.setdefault(pointer, [])
        if message not in messages:
            messages.append(message)
    return out


def save_form(session, actor, study_key, subject_key, visit_key, form_key, data, *, complete=False,
              expected_version=None, require_version=False, reason=None, seq=None, missing=None):
    """Validate and save one form record (a new log entry when ``seq`` is None for a log form).

    ``complete``: True saves the record complete, False as a draft, None keeps its status (a new
    record is a draft). Turning a complete record back into a draft is a reopening and needs a
    ``reason``, like any change of saved data.

    ``expected_version`` is the record version the change was based on (0: none yet); another one
    raises StaleVersion. With ``require_version`` (the API), changing a record that exists without
    naming a version raises PreconditionRequired instead of overwriting what the caller never saw.

    ``missing`` sets the record's missing-data flags ({"/field": {"flag", "reason"}}); None keeps
    the stored ones (less those superseded by a value). Soft checks that fail never block the save:
    each raises an automatic query on its field (``ecrf.review.queries.sync_automatic``), closed
    again by the save that makes it pass.

    Raises Invalid (with field errors), StaleVersion (a Conflict: ``expected_version`` is not the
    record's version), PreconditionRequired, Conflict (locked form, or another writer committed
    first), NotFound (unknown study, subject, visit or form).
    Nothing is written unless everything passes.
    """
    with write_transaction(session):
        is_log = visit_key in ("", None)
        visit_key = "" if is_log else visit_key
        new_entry = is_log and seq is None
        target = _load_target(session, study_key, subject_key, visit_key, form_key,
                              None if new_entry else seq or 1)
        study, spec, subject, record = target.study, target.spec, target.subject, target.record
        if is_log:
            if form_key not in spec.log_forms:
                raise NotFound(f"no log form {form_key!r} in study {study.key!r}")
        elif form_key not in visit_forms(session, spec, subject, visit_key):
            raise NotFound(f"form {form_key!r} is not collected at visit {visit_key!r}")
        form_def = spec.forms[form_key]
        if new_entry:
            seq = target.next_seq
        else:
            seq = seq or 1
            if is_log and record is None:
                raise NotFound(f"no record {seq} of {form_key!r} for subject {subject.key!r}")

        if target.locked:
            locks.assert_unlocked(session, record if record is not None else subject)
        if record is not None:
            if session.get_bind().dialect.name == "postgresql":
                # Hold the record's row from here, so that of writers based on the same version the
                # ones after the first wait, then see its new version below (StaleVersion, with the
                # current values) instead of failing in the UPDATE. SQLite's write lock does this.
                session.refresh(record, with_for_update=True)
            if record.status == RecordStatus.LOCKED:
                raise Conflict("this form is locked; a data manager must unlock it first")
            if expected_version is None and require_version:
                raise PreconditionRequired(
                    f"this record exists (version {record.version}): send the version your change is "
                    f"based on, as \"version\" in the body or as If-Match: \"{record.version}\" "
                    "(the ETag of GET), so that no one else's change is overwritten unseen")
            if expected_version is not None and expected_version != record.version:
                raise StaleVersion(f"the form was changed by someone else (now version "
                                   f"{record.version}, you edited version {expected_version})", record)
        if not isinstance(data, dict):
            raise Invalid("the form data must be an object", [("", "must be an object")])
        if complete is None:  # keep the status: a complete record stays complete (and is checked so)
            complete = record is not None and record.status == RecordStatus.COMPLETE
        status = RecordStatus.COMPLETE if complete else RecordStatus.DRAFT
        old = dict(record.data) if record is not None else {}
        old_missing = dict(record.missing or {}) if record is not None else {}
        prepared = prepare(form_def, data, complete, missing=missing, stored=old,
                           stored_missing=old_missing)
        if prepared.errors:
            raise Invalid("the form has errors", prepared.errors)
        document, flags = prepared.document, prepared.missing

        changes = diff_documents(old, document)
        flag_changes = [(p, old_missing.get(p), flags.get(p)) for p in sorted(set(old_missing) | set(flags))
                        if old_missing.get(p) != flags.get(p)]
        reason = reason.strip() if isinstance(reason, str) else None
        edits_saved = record is not None and (any(v is not None for _, v, _ in changes)
                                              or any(v is not None for _, v, _ in flag_changes))
        if edits_saved and not reason:
            raise Invalid("a reason for change is required to change saved data",
                          [("/reason", "give a reason for the change")])
        if record is not None and record.status == RecordStatus.COMPLETE and not complete and not reason:
            raise Invalid("a reason is required to reopen a complete form as a draft",
                          [("/reason", "give a reason for reopening the form")])
        if reason and (len(reason) > MAX_REASON or unstorable(reason)):
            raise Invalid("the reason for change cannot be stored",
                          [("/reason", f"give a reason of at most {MAX_REASON} characters")])

        form_version_id = target.form_version_id
        created = record is None
        old_status = None if created else record.status
        if created:
            record = FormRecord(subject_id=subject.id, visit_key=visit_key, form_key=form_key, seq=seq,
                                form_version_id=form_version_id, data=document, missing=flags,
                                status=status)
            session.add(record)
        else:
            if changes or flag_changes or record.status != status:
                record.data = document
                record.missing = flags
                # JSON columns compare with ==, for which true == 1: make sure the new text is written
                flag_modified(record, "data")
                flag_modified(record, "missing")
                record.status = status
                record.form_version_id = form_version_id
                record.updated_at = utcnow()
        session.flush()

        where = dict(_subject_where(subject), visit=visit_key or None, form=form_key,
                     form_version=form_def.version, record=record.id)
        why = None if created else reason
        # In the order a reader expects: flags lifted, then values, then flags set.
        events = [actor.event(Action.MISSING, field=ptr, old=before, new=None, reason=why, **where)
                  for ptr, before, after in flag_changes if after is None]
        for ptr, before, after in changes:
            action = Action.CREATE if before is None else Action.CLEAR if after is None else Action.UPDATE
            events.append(actor.event(action, field=ptr, old=before, new=after, reason=why, **where))
        events += [actor.event(Action.MISSING, field=ptr, old=before, new=after, reason=why, **where)
                   for ptr, before, after in flag_changes if after is not None]
        if created or old_status != status:
            events.append(actor.event(Action.STATUS, old=old_status, new=str(status), reason=why,
                                      **where))
        append_many(session.connection(), events)
        checks = _by_field(soft_checks(form_def, document))
        if not created:  # a new record has no verifications or queries yet
            sdv.clear_changed(session, actor, record, changes)
        review_queries.sync_automatic(session, actor, record, checks, new_record=created)
        apply_eligibility(session, actor, spec, subject, form_key, document, complete)
    return SaveResult(record, changes, created, flag_changes, checks)

