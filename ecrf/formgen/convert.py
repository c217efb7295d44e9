"""[2] form.data ⇄ JSON document: the only place that knows how a field's Python value (what the
WTForms field parsed) maps to the JSON value stored, and back.

* ``form_data(layout, document, missing, context)``: the ``data=`` of a form showing a document.
* ``to_document(layout, form, context, previous)``: a submitted form → ``Converted`` (the document,
  its missing-data flags, parse errors by JSON pointer, and where each row of a repeating group
  came from). Empty inputs are absent keys, never ``""`` or a magic number; an emptied row of a
  repeating group is dropped; calculated and read-only fields are never taken from the page.
* ``to_formdata(layout, document, missing, context)``: the form post a browser would send for a
  document (tests and the benchmark round-trip through it).

By kind (``FieldType.kind``):

==============  ==============================  ===========================================
kind            Python value (field.data)       JSON value
==============  ==============================  ===========================================
string, text    str                             string
integer         int                             integer
number          Decimal                         integer when whole as typed, else number
date            "YYYY-MM-DD"                    the same string (JSON Schema checks it)
datetime        naive local / aware datetime    RFC 3339 with the site zone's offset
time            naive / aware time              "HH:MM:SS+hh:mm" (site zone's offset today)
partial-date    "YYYY", "YYYY-MM", "YYYY-MM-DD" the same string
choice          the code (any JSON)             the code
choices         list of codes                   list of codes (code-list order)
json            any                             the same
group           list of row dicts               list of row objects, empty rows dropped
==============  ==============================  ===========================================

Round trips are exact: a document shown and sent back unchanged converts to the same document.
For date-times and times the stored text is kept when the value typed means the same moment (or the
same clock time), so a value saved through the API with another offset does not become a change.
"""
import dataclasses
import datetime as dt
import decimal
import zoneinfo

from werkzeug.datastructures import MultiDict

from ecrf.formgen import build, fieldtypes

ABSENT = object()


@dataclasses.dataclass(frozen=True)
class Context:
    """What conversion needs beyond the form: the site's time zone and the current time."""

    tz: dt.tzinfo = dt.timezone.utc
    now: dt.datetime | None = None

    @classmethod
    def for_zone(cls, name, now=None):
        try:
            tz = zoneinfo.ZoneInfo(name) if name and name != "UTC" else dt.timezone.utc
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = dt.timezone.utc
        return cls(tz, now)

    @property
    def zone_name(self):
        return getattr(self.tz, "key", None) or "UTC"

    def current(self):
        return self.now or dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass
class Converted:
    """A submitted form as data: ``errors`` maps JSON pointers to parse messages; ``rows`` maps a
    group's name to the form entries kept, in document order (for placing row errors)."""

    document: dict
    missing: dict
    errors: dict
    rows: dict


def _pointer(*parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# --- JSON → Python -------------------------------------------------------------------------------

def _parse_datetime(text):
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None


def _parse_time(text):
    if not isinstance(text, str):
        return None
    try:
        return dt.time.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


def _python(spec, value, context):
    """The field data that shows JSON ``value``."""
    kind = spec.kind
    if kind == "datetime":
        parsed = _parse_datetime(value)
        if parsed is None:
            return value
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(context.tz).replace(tzinfo=None)
        return parsed
    if kind == "time":
        parsed = _parse_time(value)
        return parsed.replace(tzinfo=None) if parsed is not None else value
    if kind == "group":
        rows = value if isinstance(value, list) else []
        return [_row_data(spec, row, context) for row in rows]
    return value


def _row_data(spec, row, context):
    row = row if isinstance(row, dict) else {}
    return {c.attr: _python(c, row[c.name], context) for c in spec.columns
            if c.name in row and c.type.unbound(c) is not None}


def form_data(layout, document, missing=None, context=None):
    """The ``data=`` mapping (by WTForms attribute) of a form showing ``document`` and its flags."""
    context = context or Context()
    data = {}
    for spec in layout.fields:
        if spec.calculate is not None:
            continue
        if spec.name in document:
            data[spec.attr] = _python(spec, document[spec.name], context)
        flag = (missing or {}).get(_pointer(spec.name))
        if spec.missing_flags and isinstance(flag, dict):
            data[build.missing_attr(spec.name)] = flag.get("flag")
            data[build.missing_reason_attr(spec.name)] = flag.get("reason")
    return data


def new_document(layout):
    """A new form's starting document: the ``default`` of each field that has one."""
    return {spec.name: spec.default for spec in layout.fields
            if spec.has_default and spec.calculate is None}


# --- Python → JSON -------------------------------------------------------------------------------

def _number(value):
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value() and value.as_tuple().exponent >= 0:
            return int(value)
        return float(value)
    return value


def _datetime_json(value, previous, context):
    # A wall-clock time that does not exist or is ambiguous (a DST change) resolves as zoneinfo
    # does (fold=0: the first of two, the offset before a gap).
    aware = value.replace(tzinfo=context.tz) if value.tzinfo is None else value
    old = _parse_datetime(previous)
    if old is not None and old.tzinfo is not None and old == aware:
        return previous
    return aware.isoformat(timespec="microseconds" if aware.microsecond else "seconds")


def _time_json(value, previous, context):
    old = _parse_time(previous)
    if old is not None and old.tzinfo is not None and old.replace(tzinfo=None) == value.replace(tzinfo=None) \
            and (value.tzinfo is None or old == value):
        return previous
    if value.tzinfo is None:
        offset = context.current().astimezone(context.tz).utcoffset() or dt.timedelta(0)
        value = value.replace(tzinfo=dt.timezone(offset))
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")


def _json(spec, field, previous, context, path, errors, rows):
    """The JSON value of one bound field, or ABSENT; parse messages go to ``errors``."""
    kind = spec.kind
    if kind == "group":
        return _group_json(spec, field, previous, context, path, errors, rows)
    if field.process_errors:
        errors.setdefault(_pointer(*path), []).extend(field.process_errors)
        return ABSENT
    value = field.data
    if value is None or (isinstance(value, (list, str)) and not value):
        return ABSENT
    if kind in ("integer", "number"):
        return _number(value)
    if kind == "datetime":
        return _datetime_json(value, previous, context)
    if kind == "time":
        return _time_json(value, previous, context)
    return value


def _has_input(field):
    """Whether a row's field received anything (a value or something unparseable)."""
    if getattr(field, "entries", None) is not None:
        return any(_row_has_input(e) for e in field.entries)
    if field.process_errors:
        return True
    data = field.data
    return data is not None and not (isinstance(data, (list, str)) and not data)


def _row_has_input(entry):
    return any(_has_input(f) for f in entry.form)


def _group_json(spec, field, previous, context, path, errors, rows):
    previous_rows = previous if isinstance(previous, list) else []
    kept, out = [], []
    for entry in field.entries:
        if not _row_has_input(entry):
            continue  # an emptied row is removed from the stored array
        index = len(out)
        old_row = previous_rows[index] if index < len(previous_rows) and isinstance(
            previous_rows[index], dict) else {}
        row = {}
        for column in spec.columns:
            sub = entry.form._fields.get(column.attr)
            if sub is None:
                continue
            value = _json(column, sub, old_row.get(column.name), context, (*path, index, column.name),
                          errors, rows)
            if value is not ABSENT:
                row[column.name] = value
        kept.append(entry)
        out.append(row)
    rows[path[0] if len(path) == 1 else _pointer(*path)] = kept
    return out if out else ABSENT


def to_document(layout, form, context=None, previous=None):
    """Convert a submitted form into a document and its missing-data flags (see module docstring).

    ``previous`` is the stored document (None for a new record): read-only fields keep its values
    (or their ``default`` on a new record), and date-times and times keep its text when unchanged.
    """
    context = context or Context()
    new = previous is None
    previous = previous or {}
    document, missing, errors, rows = {}, {}, {}, {}
    for spec in layout.fields:
        if spec.calculate is not None:
            continue
        if spec.read_only:
            if spec.name in previous:
                document[spec.name] = previous[spec.name]
            elif spec.has_default and new:
                document[spec.name] = spec.default
            continue
        field = form._fields.get(spec.attr)
        if field is None:
            continue
        value = _json(spec, field, previous.get(spec.name), context, (spec.name,), errors, rows)
        if value is not ABSENT:
            document[spec.name] = value
        if spec.missing_flags:
            flag_field = form._fields[build.missing_attr(spec.name)]
            reason_field = form._fields[build.missing_reason_attr(spec.name)]
            pointer = _pointer(spec.name)
            problems = flag_field.process_errors + reason_field.process_errors
            if problems:
                errors.setdefault(pointer, []).extend(problems)
            elif flag_field.data:
                missing[pointer] = {"flag": flag_field.data, "reason": reason_field.data or ""}
    return Converted(document, missing, errors, rows)


# --- JSON → a browser's form post ----------------------------------------------------------------

def _post_field(field, spec, out):
    kind = spec.kind
    if kind == "group":
        for entry in field.entries:
            for column in spec.columns:
                sub = entry.form._fields.get(column.attr)
                if sub is not None:
                    _post_field(sub, column, out)
        return
    if kind == "partial-date":
        for part in fieldtypes.PartialDateInput.PARTS:
            out.add(f"{field.name}-{part}", field.part(part))
        return
    if kind in ("choice", "choices"):
        for choice in field.choices:
            if field.selected(choice):
                out.add(field.name, choice.key)
        return
    out.add(field.name, field._value())


def to_formdata(layout, document, missing=None, context=None, version=None):
    """The form post a browser sends for ``document`` shown on the page (what the template renders
    as values, selected options and ticked boxes)."""
    form = layout.form_class(data=form_data(layout, document, missing, context))
    out = MultiDict()
    for spec in layout.fields:
        if spec.read_only:
            continue
        field = form._fields.get(spec.attr)
        if field is not None:
            _post_field(field, spec, out)
        if spec.missing_flags:
            flag = form._fields[build.missing_attr(spec.name)]
            out.add(flag.name, flag.data or "")
            out.add(build.missing_reason_attr(spec.name),
                    form._fields[build.missing_reason_attr(spec.name)]._value())
    if version is not None:
        out.add(build.VERSION_FIELD, str(version))
    return out
