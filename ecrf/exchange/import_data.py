"""Import form data in bulk from a CSV file, through the capture service like any other edit.

One row is one record of one form, in the columns of the CSV export: ``subject``, ``site``,
``visit``, ``visit_date``, ``record`` (the entry number of a log form), ``form_version`` and
``status``, then one column per field; ``<field>_label`` columns are ignored and ``<field>_missing``
columns give missing-data flags (``not_done: reason``). Every row goes through
``capture.service.save_form`` (validation, calculations, conditions, reason for change, soft-check
queries, audit), acting as the importing user on the ``import`` channel.

All rows or none: the rows are saved in one transaction, each in a savepoint so that every bad row
is found; one problem anywhere refuses the file and nothing is written. A dry run saves every row
the same way and then rolls the transaction back, so it reports exactly what an import would do.
Importing the same file again changes nothing: a row whose values, flags and status are already
stored is left alone.
"""
import dataclasses
import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from audit import RequestContext
from ecrf.audit_view import unneutralise
from ecrf.actor import Actor
from ecrf.auth import permissions
from ecrf.capture.service import diff_documents, enrol_subject, prepare, save_form
from ecrf.capture.validate import MISSING_FLAGS
from ecrf.capture.visits import set_visit_date, subject_visits
from ecrf.db import write_transaction
from ecrf.definitions.model import code_values, ref_target
from ecrf.errors import EcrfError, Invalid, NotFound
from ecrf.exchange.studyfiles import parse_csv, read_text
from ecrf.models import FormRecord, RecordStatus, Subject
from ecrf.studies import definition, get_site, get_study

#: The channel of every audit event an import writes.
IMPORT = RequestContext(channel="import")
#: The columns that say which record a row is, in the order of the CSV export.
RECORD_COLUMNS = ("subject", "site", "visit", "visit_date", "record", "form_version", "status")
_COMPLETE = {"complete": True, "verified": True, "signed": True, "locked": True, "draft": False}


class ImportRefused(Invalid):
    """The file is refused; ``problems`` lists (row, pointer, message), row 1 being the header."""

    def __init__(self, problems):
        self.problems = sorted(problems, key=lambda p: (p[0], p[1]))
        lines = [f"row {row}: {pointer or '/'}: {message}" for row, pointer, message in self.problems]
        super().__init__(f"{len(lines)} problem(s); nothing was imported", lines)

    def lines(self):
        return list(self.errors)


@dataclasses.dataclass
class RowResult:
    row: int
    subject: str
    visit: str
    record: int | None
    #: created, changed or unchanged
    outcome: str
    #: [(pointer, old, new)]: values, missing-data flags (``/field (missing)``), status, visit date
    changes: list


@dataclasses.dataclass
class ImportReport:
    study: str
    form: str
    dry_run: bool
    rows: list

    def count(self, outcome):
        return sum(1 for r in self.rows if r.outcome == outcome)


class _DryRun(Exception):
    pass


def _field_schema(form_def, field):
    return _resolved(form_def, field.schema)


def _resolved(form_def, schema):
    """``schema`` with its ``$ref`` (within the form) followed."""
    schema = dict(schema)
    for _ in range(20):
        if "$ref" not in schema:
            break
        target = ref_target(form_def.schema, schema.pop("$ref")) or {}
        schema = dict(target) | schema
    return schema


@dataclasses.dataclass(frozen=True)
class FieldColumn:
    """What reading a field's cells needs, worked out once per import."""

    schema: dict
    #: The code list as text (``code_values``), or None.
    codes: tuple | None
    #: The codes stored as strings (the others are JSON: numbers, booleans).
    text_codes: frozenset

    @classmethod
    def of(cls, schema):
        target = schema.get("items", schema) if schema.get("type") == "array" else schema
        values = list(target.get("enum", ())) or [o.get("const") for o in target.get("oneOf", ())]
        codes = code_values(schema)
        return cls(schema, tuple(codes) if codes is not None else None,
                   frozenset(v for v in values if isinstance(v, str)))


def _scalar(schema, text, column=None):
    """The JSON value a cell stands for under ``schema`` (ValueError with a message when none)."""
    if column is not None and column.codes is not None:
        if text not in column.codes:
            raise ValueError(f"{text!r} is not one of the codes: {', '.join(column.codes)}")
        return text if text in column.text_codes else json.loads(text)
    kind = schema.get("type")
    if kind == "integer":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
        if not value.is_integer():
            raise ValueError(f"{text!r} is not a whole number")
        return int(value)
    if kind == "number":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    if kind == "boolean":
        low = text.lower()
        if low in ("true", "1", "yes", "y"):
            return True
        if low in ("false", "0", "no", "n"):
            return False
        raise ValueError(f"{text!r} is not yes or no (true/false)")
    if kind in ("object", "array"):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("is not a JSON value") from None
    return text


def cell_value(column, text):
    """The JSON value of one CSV cell for a field (a FieldColumn); None for an empty cell (the field
    is cleared)."""
    text = text.strip()
    if text == "":
        return None
    schema = column.schema
    if schema.get("type") == "array":
        items = schema.get("items", {})
        if items.get("type") == "object" or text.startswith("["):
            return _scalar({"type": "array"}, text)
        return [_scalar(items, part.strip(), column) for part in text.split(";") if part.strip()]
    return _scalar(schema, text, column)


def _columns(header, owner, schemas, keys=RECORD_COLUMNS):
    """{column index: (role, field name)} and the header's problems. Besides the field's own column,
    a multiple-choice field may come as the export's 1/0 column per option (``<field>__<code>``,
    role ``("choice", code)``), and a flag's reason in its own column (``<field>_missing_reason``)."""
    names = set(schemas)
    choices = {f"{name}__{code}": (name, code) for name, column in schemas.items()
               if column.schema.get("type") == "array" and column.codes is not None for code in column.codes}
    out, problems, seen = {}, [], set()
    for i, column in enumerate(header):
        where = f"/{column}"
        if column in seen:
            problems.append((1, where, "the column is given twice"))
            continue
        seen.add(column)
        if column in keys:
            out[i] = (column, None)
        elif column in names:
            out[i] = ("field", column)
        elif column.endswith("_label") and column[:-6] in names:
            continue
        elif column.endswith("_missing") and column[:-8] in names:
            out[i] = ("missing", column[:-8])
        elif column.endswith("_missing_reason") and column[:-15] in names:
            out[i] = ("reason", column[:-15])
        elif column in choices:
            name, code = choices[column]
            if name in header:
                problems.append((1, where, f"{name!r} is given both as one column and as a column per option"))
            out[i] = (("choice", code), name)
        else:
            problems.append((1, where, f"{column!r} is not a column of {owner}"))
    if "subject" not in seen:
        problems.append((1, "/subject", "a subject column is needed"))
    return out, problems, seen


def import_data(session, user, study_key, form_key, path, *, reason=None, dry_run=False, encoding=None,
                groups=()):
    """Import the rows of the CSV file at ``path`` into ``form_key`` of ``study_key`` as ``user``
    (who needs ``data.import`` at each subject's site); return an ImportReport.

    Raises ImportRefused listing every problem (nothing written), or Invalid/NotFound for a file or
    form that cannot be read at all.
    """
    group_texts = {}
    for group_path in groups:
        stem = Path(group_path).stem
        if not stem.startswith(f"{form_key}__"):
            raise Invalid(f"{group_path}: a repeating group's file is named <form>__<group>.csv, "
                          f"as the CSV export names it (here {form_key}__<group>.csv)")
        group_texts[stem.removeprefix(f"{form_key}__")] = read_text(group_path, encoding, "CSV file")
    return import_csv_text(session, user, study_key, form_key, read_text(path, encoding, "CSV file"),
                           reason=reason, dry_run=dry_run, name=str(path), groups=group_texts)


def import_csv_text(session, user, study_key, form_key, text, *, reason=None, dry_run=False,
                    name="the file", context=IMPORT, groups=None):
    """``import_data`` of CSV text (an upload); ``context`` is the request's, on the import channel."""
    header, rows = parse_csv(text, name)
    study = get_study(session, study_key)
    spec = definition(study)
    if form_key not in spec.forms:
        raise NotFound(f"no form {form_key!r} in study {study_key!r}")
    form_def = spec.forms[form_key]
    is_log = form_key in spec.log_forms
    schemas = {f.name: FieldColumn.of(_field_schema(form_def, f)) for f in form_def.fields}
    columns, problems, seen = _columns(header, f"form {form_key!r}", schemas)
    if not is_log and "visit" not in seen:
        problems.append((1, "/visit", "a visit column is needed for a visit form"))
    if problems:
        raise ImportRefused(problems)
    group_rows = {}
    for group_name, group_text in (groups or {}).items():
        group_rows[group_name] = _group_rows(form_def, is_log, group_name, group_text)
    report = ImportReport(study_key, form_key, dry_run, [])
    session.expire_all()
    try:
        with write_transaction(session):
            rows_context = _Context(session, user, study, context)
            for number, row in enumerate(rows, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    problems.append((number, "/", f"{len(row)} cells, but the header has {len(header)}"))
                    continue
                cells, fields, flags, bad = _read_row(row, columns, schemas)
                parent = (cells.get("subject", ""), "" if is_log else cells.get("visit", ""),
                          cells.get("record", "") or ("" if is_log else "1"))
                for group_name, by_parent in group_rows.items():
                    if parent in by_parent:
                        fields[group_name] = by_parent.pop(parent)
                if bad:
                    problems += [(number, pointer, message) for pointer, message in bad]
                    continue
                rows_context.enrolled = []
                try:
                    with session.begin_nested():
                        report.rows.append(_import_row(rows_context, spec, form_def, is_log,
                                                       number, cells, fields, flags, reason))
                except Invalid as exc:
                    rows_context.forget_enrolled()
                    problems += [(number, ptr or "/", msg) for ptr, msg in exc.errors] or \
                        [(number, "/", str(exc))]
                except EcrfError as exc:
                    rows_context.forget_enrolled()
                    problems.append((number, "/", str(exc)))
            for group_name, by_parent in group_rows.items():
                for (subject, visit, record), group in by_parent.items():
                    problems.append((1, f"/{group_name}", f"{len(group)} row(s) of the group file for subject "
                                                          f"{subject!r}, visit {visit!r}, record {record!r} "
                                                          "belong to no row of the form's file"))
            if problems:
                raise ImportRefused(problems)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    finally:
        session.expire_all()
    return report


GROUP_KEYS = ("subject", "site", "visit", "record", "row")


def _group_rows(form_def, is_log, group, text):
    """{(subject, visit, record): [row objects, in the order of their row numbers]} of a repeating
    group's CSV file (the export's ``<form>__<group>.csv``: subject, site, visit, record, row, then
    the group's item columns); ImportRefused for a bad file, its problems naming the group."""
    field = next((f for f in form_def.fields if f.name == group), None)
    items = _resolved(form_def, _field_schema(form_def, field).get("items") or {}) if field is not None else {}
    if items.get("type") != "object":
        raise ImportRefused([(1, f"/{group}", f"{group!r} is not a repeating group of form {form_def.id!r}")])
    schemas = {name: FieldColumn.of(_resolved(form_def, schema))
               for name, schema in (items.get("properties") or {}).items()}
    header, rows = parse_csv(text, f"the file of group {group!r}")
    columns, problems, _seen = _columns(header, f"group {group!r}", schemas, GROUP_KEYS)
    found, numbers = {}, {}
    for number, row in enumerate(rows, start=2):
        if problems or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append((number, f"/{group}", f"{len(row)} cells, but the header has {len(header)}"))
            continue
        cells, values, flags, bad = _read_row(row, columns, schemas)
        problems += [(number, f"/{group}{pointer}", message) for pointer, message in bad]
        problems += [(number, f"/{group}/{name}_missing", "a group's items have no missing-data flags")
                     for name in flags]
        key = (cells.get("subject", ""), "" if is_log else cells.get("visit", ""),
               cells.get("record", "") or ("" if is_log else "1"))
        order = cells.get("row", "")
        if not order.isdigit():
            problems.append((number, f"/{group}/row", f"{order!r} is not a row number"))
            continue
        found.setdefault(key, []).append({k: v for k, v in values.items() if v is not None})
        numbers.setdefault(key, []).append(int(order))
    if problems:
        raise ImportRefused([(row, pointer, f"{message} (group {group!r})") for row, pointer, message in problems])
    return {key: [r for _n, r in sorted(zip(numbers[key], rows_, strict=True), key=lambda p: p[0])]
            for key, rows_ in found.items()}


def _read_row(row, columns, schemas):
    """(record cells, field values, missing-data flags, problems) of one row."""
    cells, fields, flags, reasons, chosen, bad = {}, {}, {}, {}, {}, []
    for i, cell in enumerate(row):
        if i not in columns:
            continue
        cell = unneutralise(cell)  # the export's ``'`` before a cell a spreadsheet would read as a formula
        role, field = columns[i]
        if role == "field":
            try:
                fields[field] = cell_value(schemas[field], cell)
            except ValueError as exc:
                bad.append((f"/{field}", str(exc)))
        elif role == "missing":
            flags[field] = cell.strip()
        elif role == "reason":
            reasons[field] = cell.strip()
        elif isinstance(role, tuple):  # one option of a multiple-choice field: 1, 0 or empty
            text, code = cell.strip(), role[1]
            if text not in ("", "0", "1"):
                bad.append((f"/{field}__{code}", f"{text!r} is not 1 (chosen) or 0"))
                continue
            chosen.setdefault(field, []).append((text, code))
        else:
            cells[role] = cell.strip()
    for field, options in chosen.items():  # every option empty: the field is empty
        column = schemas[field]
        fields[field] = None if not any(text for text, _ in options) else \
            [_scalar(column.schema.get("items", {}), code, column) for text, code in options if text == "1"]
    for field, reason in reasons.items():
        flag = flags.get(field, "").partition(":")[0].strip()
        if flag:
            flags[field] = f"{flag}: {reason}"
    return cells, fields, flags, bad


class _Context:
    """What every row of one import shares: the user's role at each site (asked once per site of
    the permission table) and the study's subjects by id (read once; new ones join)."""

    def __init__(self, session, user, study, request_context):
        self.session, self.user, self.study = session, user, study
        self.request_context = request_context
        self.actors = {}
        #: Subjects enrolled by the row being imported (forgotten when its savepoint rolls back).
        self.enrolled = []
        self.subjects = {s.key: s for s in session.scalars(
            select(Subject).where(Subject.study_id == study.id).options(selectinload(Subject.site)))}

    def forget_enrolled(self):
        for key in self.enrolled:
            self.subjects.pop(key, None)

    def actor(self, site):
        if site.id not in self.actors:
            role = permissions.require(self.session, self.user, "data.import", self.study, site)
            self.actors[site.id] = Actor(self.user.id, self.user.username, role, self.request_context)
        return self.actors[site.id]


def _import_row(context, spec, form_def, is_log, number, cells, fields, flags, reason):
    session, study = context.session, context.study
    subject_key = cells.get("subject", "")
    if not subject_key:
        raise Invalid("no subject", [("/subject", "give the subject id")])
    subject = context.subjects.get(subject_key)
    site_key = cells.get("site", "")
    if subject is None:
        if not site_key:
            raise Invalid("new subject", [("/site", f"subject {subject_key!r} is new: give its site")])
        actor = context.actor(get_site(session, study, site_key))
        subject = enrol_subject(session, actor, study.key, site_key, subject_key)
        context.subjects[subject_key] = subject
        context.enrolled.append(subject_key)
        created_subject = True
    else:
        if site_key and site_key != subject.site.key:
            raise Invalid("wrong site", [("/site", f"subject {subject_key!r} is at site "
                                                    f"{subject.site.key!r}, not {site_key!r}")])
        actor = context.actor(subject.site)
        created_subject = False
    visit_key = "" if is_log else cells.get("visit", "")
    if is_log and cells.get("visit"):
        raise Invalid("log form", [("/visit", f"{form_def.id!r} is a log form: leave the visit empty")])
    if not is_log and not visit_key:
        raise Invalid("no visit", [("/visit", "give the visit")])
    changes = []
    visit_date = cells.get("visit_date", "")
    if visit_date and not is_log:
        old = subject_visits(session, subject).get(visit_key)
        old_date = old.visit_date.isoformat() if old is not None and old.visit_date else None
        if old_date != visit_date:
            set_visit_date(session, actor, study.key, subject.key, visit_key, visit_date, reason)
            changes.append(("/visit_date", old_date, visit_date))

    seq = 1
    record_text = cells.get("record", "")
    if record_text:
        if not record_text.isdigit() or int(record_text) < 1:
            raise Invalid("bad record", [("/record", f"{record_text!r} is not an entry number")])
        seq = int(record_text)
        if not is_log and seq != 1:
            raise Invalid("bad record", [("/record", "a visit form has one record: leave it empty or 1")])
    record = None
    if is_log and not record_text:
        seq = None  # a new entry, numbered by the service
    else:
        record = session.query(FormRecord).filter_by(subject_id=subject.id, visit_key=visit_key,
                                                     form_key=form_def.id, seq=seq).one_or_none()
    if is_log and record is None and seq is not None:
        last = session.query(func.max(FormRecord.seq)).filter_by(
            subject_id=subject.id, visit_key="", form_key=form_def.id).scalar() or 0
        if seq != last + 1:
            raise Invalid("bad record", [("/record", f"entry {seq} does not exist; the next new entry "
                                                      f"is {last + 1}")])
        seq = None
    stored = dict(record.data or {}) if record is not None else {}
    stored_missing = dict(record.missing or {}) if record is not None else {}
    data = stored | fields
    missing = None
    if flags:
        missing = dict(stored_missing)
        for name, text in flags.items():
            flag, _, why = text.partition(":")
            flag = flag.strip()
            if not flag:
                missing.pop(f"/{name}", None)
            elif flag not in MISSING_FLAGS:
                raise Invalid("bad flag", [(f"/{name}_missing", f"{flag!r} is not one of "
                                                                  f"{', '.join(MISSING_FLAGS)}")])
            else:
                missing[f"/{name}"] = {"flag": flag, "reason": why.strip() or stored_missing.get(
                    f"/{name}", {}).get("reason", "")}
    status_text = cells.get("status", "").lower()
    if status_text and status_text not in _COMPLETE:
        raise Invalid("bad status", [("/status", f"{status_text!r} is not draft or complete")])
    if status_text:
        complete = _COMPLETE[status_text]
    else:
        complete = record is not None and record.status != RecordStatus.DRAFT
    if record is not None:
        prepared = prepare(form_def, data, complete, missing=missing, stored=stored,
                           stored_missing=stored_missing)
        same_status = (record.status == RecordStatus.DRAFT) == (not complete)
        if not prepared.errors and not diff_documents(stored, prepared.document) \
                and prepared.missing == stored_missing and same_status:
            return RowResult(number, subject.key, visit_key, seq, "changed" if changes else "unchanged",
                             changes)
    result = save_form(session, actor, study.key, subject.key, visit_key, form_def.id, data,
                       complete=complete, reason=reason, seq=seq, missing=missing)
    changes += result.changes
    changes += [(f"{ptr} (missing)", old, new) for ptr, old, new in result.flag_changes]
    if record is not None and record.status != result.record.status:
        changes.append(("/status", None, str(result.record.status)))
    outcome = "created" if result.created or created_subject else "changed" if changes else "unchanged"
    return RowResult(number, subject.key, visit_key, result.record.seq, outcome, changes)
