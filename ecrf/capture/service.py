"""Capture services: enrol subjects and save form records. Each call is one transaction that writes
the change and its audit events together (``write_transaction``); views, the API and the CLI call
these and nothing else to change clinical data.
"""
import dataclasses
import re

from sqlalchemy import func, select

from audit import Action, append, append_many
from ecrf.capture.subjects import apply_eligibility
from ecrf.capture.validate import validate_document
from ecrf.capture.visits import visit_forms
from ecrf.db import utcnow, write_transaction
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import FormRecord, FormVersion, RecordStatus, Subject, SubjectState
from ecrf.rules.derive import derive
from ecrf.studies import definition, get_site, get_study

DEFAULT_ID_TEMPLATE = "{site}-{n:03}"
SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _subject_where(subject):
    return {"study": subject.study.key, "site": subject.site.key, "subject": subject.key}


def next_subject_id(session, study, site, template):
    """The next free id from the study's template: ``{site}`` and ``{n}`` or ``{n:03}``."""
    count = session.scalar(select(func.count()).select_from(Subject).where(
        Subject.study_id == study.id, Subject.site_id == site.id))
    n = count + 1
    while True:
        candidate = template.replace("{site}", site.key)
        candidate = re.sub(r"\{n(?::0?(\d))?\}", lambda m: str(n).zfill(int(m.group(1) or 0)), candidate)
        if not session.scalar(select(Subject.id).where(Subject.study_id == study.id,
                                                       Subject.key == candidate)):
            return candidate
        n += 1


def enrol_subject(session, actor, study_key, site_key, subject_key=None):
    """Create a subject at a site. A study without eligibility criteria enrols at once; one with
    criteria starts the subject in screening until its eligibility form is complete."""
    with write_transaction(session):
        study = get_study(session, study_key)
        site = get_site(session, study, site_key)
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
        if before == after:
            continue
        ptr = "/" + key.replace("~", "~0").replace("/", "~1")
        rows_before = isinstance(before, list) and before and all(isinstance(r, dict) for r in before)
        rows_after = isinstance(after, list) and after and all(isinstance(r, dict) for r in after)
        if rows_before and rows_after and len(before) == len(after):
            for i, (a, b) in enumerate(zip(before, after, strict=True)):
                la, lb = _leaves(a, f"{ptr}/{i}"), _leaves(b, f"{ptr}/{i}")
                for p in sorted(set(la) | set(lb)):
                    if la.get(p) != lb.get(p):
                        changes.append((p, la.get(p), lb.get(p)))
        elif isinstance(before, dict) and isinstance(after, dict) and before and after:
            la, lb = _leaves(before, ptr), _leaves(after, ptr)
            for p in sorted(set(la) | set(lb)):
                if la.get(p) != lb.get(p):
                    changes.append((p, la.get(p), lb.get(p)))
        else:
            changes.append((ptr, before, after))
    return changes


@dataclasses.dataclass(frozen=True)
class SaveResult:
    record: FormRecord
    changes: list
    created: bool


def save_form(session, actor, study_key, subject_key, visit_key, form_key, data, *, complete=False,
              expected_version=None, reason=None, seq=None):
    """Validate and save one form record (a new log entry when ``seq`` is None for a log form).

    Raises Invalid (with field errors), Conflict (stale ``expected_version``, locked form),
    NotFound (unknown study, subject, visit or form). Nothing is written unless everything passes.
    """
    with write_transaction(session):
        study = get_study(session, study_key)
        spec = definition(study)
        subject = get_subject(session, study, subject_key)
        is_log = visit_key in ("", None)
        if is_log:
            if form_key not in spec.log_forms:
                raise NotFound(f"no log form {form_key!r} in study {study.key!r}")
            visit_key = ""
        else:
            if form_key not in visit_forms(session, spec, subject, visit_key):
                raise NotFound(f"form {form_key!r} is not collected at visit {visit_key!r}")
        form_def = spec.forms[form_key]
        if is_log and seq is None:
            record = None
            seq = 1 + (session.scalar(select(func.max(FormRecord.seq)).where(
                FormRecord.subject_id == subject.id, FormRecord.visit_key == "",
                FormRecord.form_key == form_key)) or 0)
        else:
            seq = seq or 1
            record = get_record(session, subject, visit_key, form_key, seq)
            if is_log and record is None:
                raise NotFound(f"no record {seq} of {form_key!r} for subject {subject.key!r}")

        if record is not None:
            if record.status == RecordStatus.LOCKED:
                raise Conflict("this form is locked; a data manager must unlock it first")
            if expected_version is not None and expected_version != record.version:
                raise Conflict(f"the form was changed by someone else (now version {record.version}, "
                               f"you edited version {expected_version})")
        if not isinstance(data, dict):
            raise Invalid("the form data must be an object", [("", "must be an object")])
        document = derive(form_def, data)
        errors = validate_document(form_def, document, complete)
        if errors:
            raise Invalid("the form has errors", errors)

        old = dict(record.data) if record is not None else {}
        changes = diff_documents(old, document)
        status = RecordStatus.COMPLETE if complete else RecordStatus.DRAFT
        saved_before = record is not None and any(v is not None for _, v, _ in changes)
        if saved_before and changes and not (reason and reason.strip()):
            raise Invalid("a reason for change is required to change saved data",
                          [("/reason", "give a reason for the change")])

        form_version = session.scalar(select(FormVersion).where(FormVersion.content_hash == form_def.hash))
        created = record is None
        old_status = None if created else record.status
        if created:
            record = FormRecord(subject_id=subject.id, visit_key=visit_key, form_key=form_key, seq=seq,
                                form_version_id=form_version.id, data=document, status=status)
            session.add(record)
        else:
            if changes or record.status != status:
                record.data = document
                record.status = status
                record.form_version_id = form_version.id
                record.updated_at = utcnow()
        session.flush()

        where = dict(_subject_where(subject), visit=visit_key or None, form=form_key,
                     form_version=form_def.version, record=record.id)
        events = []
        for ptr, before, after in changes:
            action = Action.CREATE if before is None else Action.CLEAR if after is None else Action.UPDATE
            events.append(actor.event(action, field=ptr, old=before, new=after,
                                      reason=None if created else reason, **where))
        if created or old_status != status:
            events.append(actor.event(Action.STATUS, old=old_status, new=str(status),
                                      reason=None if created else reason, **where))
        append_many(session.connection(), events)
        apply_eligibility(session, actor, spec, subject, form_key, document, complete)
    return SaveResult(record, changes, created)
