"""[2] The field-type registry: which WTForms field, widget and parsing a JSON Schema property gets.

Each entry of ``REGISTRY`` is one documented FieldType class. ``field_type_for(schema)`` returns the
first whose ``matches(schema)`` holds; the catch-all ``JSONText`` comes last, so every schema renders.
A FieldType names

* ``kind``: how convert.py maps the field's Python value to JSON and how forms.js reads the inputs;
* ``macro``: the macro of templates/capture/_widgets.html that renders it;
* ``unbound(spec)``: the WTForms field, built once per form version by build.py.

Parsing (the text a browser sends → a Python value, or a field-level message) lives in the WTForms
field classes of this module. What is *valid* is not decided here: JSON Schema is the truth, so the
fields only parse what they must (numbers, choices, local date-times) and pass text through.
"""
import datetime as dt
import decimal
import json
import re

from wtforms import Field, FieldList, Form, FormField
from wtforms.utils import unset_value

#: Longest text accepted by a number or date input before it is refused as nonsense.
MAX_NUMBER_CHARS = 40
#: Magnitude of the largest number accepted (a JSON number a browser and a database both keep).
MAX_MAGNITUDE = decimal.Decimal("1e15")
#: Code lists of up to this many answers are radio buttons, longer ones a drop-down list.
RADIO_MAX = 6

#: Characters no field may hold: NUL (PostgreSQL refuses it in JSON text) and other C0 controls
#: except tab and line breaks.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$", re.IGNORECASE)
_YEAR = re.compile(r"^\d{4}$")


def check_text(value):
    """Refuse text that cannot be stored or shown safely (NUL, control characters, lone surrogates)."""
    if _FORBIDDEN.search(value):
        raise ValueError("contains characters that are not allowed")
    return value


def label_key(value):
    """How x-ecrf ``labels`` (and the page) name a code: strings as they are, others as JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def same_json(a, b):
    """JSON equality: ``1 == 1.0`` but ``true != 1``; lists and objects compared deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# --- WTForms fields: parsing only ----------------------------------------------------------------

class _Input(Field):
    """A single input whose ``data`` is None when empty; what was typed is kept for re-display."""

    def process_formdata(self, valuelist):
        self.data = None
        if not valuelist:
            return
        if len(valuelist) > 1:
            raise ValueError("give one value")
        text = valuelist[0].strip()
        if text:
            self.data = self.parse(check_text(text))

    def parse(self, text):
        return text

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else self.show(self.data)

    def show(self, value):
        return str(value)


class TextInput(_Input):
    """Text: a line (browsers never send line breaks from it) or, for a text area, several lines."""

    def process_formdata(self, valuelist):
        if valuelist:
            valuelist = [v.replace("\r\n", "\n").replace("\r", "\n") for v in valuelist]
        super().process_formdata(valuelist)


class IntegerInput(_Input):
    """A whole number, typed as text (``inputmode=numeric``) so that what was typed is what is sent."""

    def parse(self, text):
        if len(text) > MAX_NUMBER_CHARS or not _INTEGER.match(text):
            raise ValueError("enter a whole number, such as 42")
        value = int(text)
        if abs(value) >= MAX_MAGNITUDE:
            raise ValueError("the number is too large")
        return value


class NumberInput(_Input):
    """A number; a decimal comma is read as a point. ``data`` is a Decimal, exactly as typed."""

    def parse(self, text):
        if len(text) > MAX_NUMBER_CHARS or not _NUMBER.match(text):
            raise ValueError("enter a number, such as 4.5")
        value = decimal.Decimal(text.replace(",", "."))
        if not value.is_finite() or abs(value) >= MAX_MAGNITUDE:
            raise ValueError("the number is too large")
        return value

    def show(self, value):
        return format_number(value)


class DateInput(_Input):
    """A date (``<input type="date">`` sends ``YYYY-MM-DD``); whether it exists is JSON Schema's call."""

    def parse(self, text):
        if len(text) > MAX_NUMBER_CHARS or not _DATE.match(text):
            raise ValueError("enter the date as YYYY-MM-DD")
        return text


class DateTimeInput(_Input):
    """A local date and time (``datetime-local``); ``data`` is a naive datetime in the site's zone,
    or an aware one when an offset was typed. convert.py attaches the zone."""

    def parse(self, text):
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError("enter the date and time as YYYY-MM-DD HH:MM")
        if _LOCAL_DATETIME.match(text):
            try:
                return dt.datetime.fromisoformat(text.replace(" ", "T"))
            except ValueError:
                raise ValueError("this date or time does not exist") from None
        try:
            value = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("enter the date and time as YYYY-MM-DD HH:MM") from None
        if value.tzinfo is None:
            raise ValueError("enter the date and time as YYYY-MM-DD HH:MM")
        return value

    def show(self, value):
        return local_datetime_text(value)


class TimeInput(_Input):
    """A time of day (``<input type="time">`` sends ``HH:MM`` or ``HH:MM:SS``); ``data`` is a
    ``datetime.time``, aware when an offset was typed."""

    def parse(self, text):
        match = _TIME.match(text)
        if not match:
            raise ValueError("enter the time as HH:MM")
        try:
            return dt.time.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("this time does not exist") from None

    def show(self, value):
        return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


class PartialDateInput(Field):
    """A date whose day, or day and month, may be unknown: three inputs ``<name>-year``,
    ``<name>-month`` and ``<name>-day``. ``data`` is ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""

    PARTS = ("year", "month", "day")

    def process(self, formdata, data=None, extra_filters=None):
        if data is unset_value:
            data = None
        self.process_errors = []
        self.object_data = data
        self.data = data if data not in ("", None) else None
        self.raw_parts = None
        if formdata is None:
            return
        parts = {}
        for part in self.PARTS:
            values = formdata.getlist(f"{self.name}-{part}") if f"{self.name}-{part}" in formdata else []
            parts[part] = values[0].strip() if len(values) == 1 else ("" if not values else None)
        self.raw_parts = {k: (v if v is not None else "") for k, v in parts.items()}
        self.raw_data = [self.raw_parts[p] for p in self.PARTS]
        self.data = None
        try:
            if any(v is None for v in parts.values()):
                raise ValueError("give one value")
            self.data = self._combine(**{k: check_text(v) for k, v in parts.items()})
        except ValueError as exc:
            self.process_errors.append(exc.args[0])

    @staticmethod
    def _combine(year, month, day):
        if not (year or month or day):
            return None
        if not _YEAR.match(year):
            raise ValueError("enter the year with 4 digits")
        if day and not month:
            raise ValueError("give the month when the day is known")
        if month and not re.fullmatch(r"0?[1-9]|1[0-2]", month):
            raise ValueError("the month must be 1 to 12")
        if day and not re.fullmatch(r"0?[1-9]|[12]\d|3[01]", day):
            raise ValueError("the day must be 1 to 31")
        text = year
        if month:
            text += f"-{int(month):02d}"
        if day:
            text += f"-{int(day):02d}"
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError("this date does not exist") from None
        return text

    def part(self, name):
        """The text of one part for re-display: what was typed, or the stored value's part."""
        if self.raw_parts is not None:
            return self.raw_parts[name]
        if not isinstance(self.data, str):
            return ""
        pieces = self.data.split("-")
        index = self.PARTS.index(name)
        return pieces[index] if index < len(pieces) else ""


class ChoiceInput(Field):
    """One answer of a code list (radio buttons or a drop-down list). ``data`` is the JSON value."""

    def __init__(self, label=None, validators=None, choices=(), **kwargs):
        super().__init__(label, validators, **kwargs)
        self.choices = choices

    def process_formdata(self, valuelist):
        self.data = None
        values = [v for v in valuelist if v != ""]
        if not values:
            return
        if len(values) > 1:
            raise ValueError("choose one answer")
        for choice in self.choices:
            if choice.key == values[0]:
                self.data = choice.value
                return
        raise ValueError("is not one of the allowed choices")

    def selected(self, choice):
        if self.raw_data:
            return choice.key in self.raw_data
        return self.data is not None and same_json(choice.value, self.data)


class MultiChoiceInput(Field):
    """Several answers of a code list (check boxes). ``data`` is the list of ticked values in the
    code list's order, or None when none is ticked."""

    def __init__(self, label=None, validators=None, choices=(), **kwargs):
        super().__init__(label, validators, **kwargs)
        self.choices = choices

    def process_formdata(self, valuelist):
        self.data = None
        keys = [v for v in valuelist if v != ""]
        if not keys:
            return
        known = {c.key for c in self.choices}
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise ValueError("is not one of the allowed choices")
        self.data = [c.value for c in self.choices if c.key in keys]

    def selected(self, choice):
        if self.raw_data:
            return choice.key in self.raw_data
        return isinstance(self.data, list) and any(same_json(choice.value, v) for v in self.data)


class JSONInput(_Input):
    """Any JSON value typed as JSON text: the fallback for schemas no other type renders."""

    def parse(self, text):
        try:
            return json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise ValueError("enter a valid JSON value") from None

    def show(self, value):
        return json.dumps(value, ensure_ascii=False)


def _no_constant(name):
    raise ValueError(name)


class GroupInput(FieldList):
    """The rows of a repeating group: a FieldList of FormFields, one per row."""


def format_number(value):
    """A number as the page shows it: no trailing ``.0`` on whole numbers, never an exponent for
    everyday magnitudes (Decimal and float alike)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, decimal.Decimal):
        text = format(value, "f")
        return text
    return str(value)


def local_datetime_text(value):
    """``YYYY-MM-DDTHH:MM`` (seconds when not zero), the format of ``datetime-local``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S" if value.second or value.microsecond else "%Y-%m-%dT%H:%M")


# --- the registry --------------------------------------------------------------------------------

class FieldType:
    """One kind of field. Subclasses set ``name``, ``kind`` and ``macro`` and say which schemas they
    take (``matches``) and which WTForms field they need (``unbound``)."""

    #: Registry key, also the ``data-type`` of the field's container on the page.
    name = "base"
    #: How convert.py and forms.js read and write the value (see convert.py).
    kind = "string"
    #: The macro in templates/capture/_widgets.html.
    macro = "text"
    #: The WTForms field class.
    field_class = TextInput

    @classmethod
    def matches(cls, schema):
        raise NotImplementedError

    @classmethod
    def unbound(cls, spec):
        return cls.field_class(spec.title)


def _types(schema):
    """The JSON types a schema allows, without ``null``."""
    kind = schema.get("type")
    if kind is None:
        return set()
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return kinds - {"null"}


def code_list(schema):
    """The answers of a code-list schema as ``(value, title or None)`` pairs, or None."""
    if "enum" in schema:
        return [(v, None) for v in schema["enum"]]
    if "const" in schema:
        return [(schema["const"], schema.get("title"))]
    for key in ("oneOf", "anyOf"):
        options = schema.get(key)
        if options and all(isinstance(o, dict) and "const" in o for o in options):
            return [(o["const"], o.get("title")) for o in options]
    return None


class Choice:
    """One answer: ``key`` is what the page sends, ``label`` what it shows, ``value`` what is stored."""

    __slots__ = ("key", "label", "value")

    def __init__(self, key, label, value):
        self.key, self.label, self.value = key, label, value

    def __repr__(self):
        return f"Choice({self.key!r}, {self.label!r}, {self.value!r})"


def choices_for(schema, labels):
    """The Choice list of a code list (or a boolean): labels from x-ecrf ``labels``, then the
    ``oneOf`` titles, then the value itself."""
    answers = code_list(schema)
    if answers is None and _types(schema) == {"boolean"}:
        answers = [(True, "Yes"), (False, "No")]
    if answers is None:
        return ()
    keys = [label_key(v) for v, _ in answers]
    if len(set(keys)) != len(keys):  # e.g. enum ["1", 1]: fall back to JSON text for every key
        keys = [json.dumps(v) for v, _ in answers]
    return tuple(Choice(key, labels.get(label_key(value)) or title or label_key(value), value)
                 for key, (value, title) in zip(keys, answers, strict=True))


class Calculated(FieldType):
    """A field the server computes (``x-ecrf.calculate``): shown in an ``<output>``, never parsed
    from the page; forms.js previews it from the expression tree."""

    name = "calculated"
    kind = "calculated"
    macro = "calculated"

    @classmethod
    def matches(cls, schema):
        return "calculate" in (schema.get("x-ecrf") or {})

    @classmethod
    def unbound(cls, spec):
        return None


class RepeatingGroup(FieldType):
    """An array of objects: a table whose rows can be added and removed; each row is a small form
    built from ``items`` with this same registry."""

    name = "table"
    kind = "group"
    macro = "group"

    @classmethod
    def matches(cls, schema):
        items = schema.get("items")
        return _types(schema) == {"array"} and isinstance(items, dict) and (
            "object" in _types(items) or "properties" in items)

    @classmethod
    def unbound(cls, spec):
        row_class = type(f"Row_{spec.name}", (Form,), {})
        for column in spec.columns:
            field = column.type.unbound(column)
            if field is not None:
                setattr(row_class, column.attr, field)
        return GroupInput(FormField(row_class), spec.title, min_entries=0)


class Checkboxes(FieldType):
    """An array whose items are a code list: one check box per answer."""

    name = "checkboxes"
    kind = "choices"
    macro = "checkboxes"
    field_class = MultiChoiceInput

    @classmethod
    def matches(cls, schema):
        items = schema.get("items")
        return _types(schema) == {"array"} and isinstance(items, dict) and code_list(items) is not None

    @classmethod
    def unbound(cls, spec):
        return MultiChoiceInput(spec.title, choices=spec.choices)


class Radio(FieldType):
    """A short code list (or a yes/no boolean): radio buttons in a fieldset."""

    name = "radio"
    kind = "choice"
    macro = "radio"
    field_class = ChoiceInput

    @classmethod
    def matches(cls, schema):
        widget = (schema.get("x-ecrf") or {}).get("widget")
        if widget == "select":
            return False
        answers = code_list(schema)
        if answers is None:
            return _types(schema) == {"boolean"}
        return widget == "radio" or len(answers) <= RADIO_MAX

    @classmethod
    def unbound(cls, spec):
        return ChoiceInput(spec.title, choices=spec.choices)


class Select(Radio):
    """A long code list (or one with ``widget: select``): a drop-down list."""

    name = "select"
    macro = "select"

    @classmethod
    def matches(cls, schema):
        return code_list(schema) is not None or _types(schema) == {"boolean"}


class PartialDate(FieldType):
    """A date that may lack its day, or its day and month (``x-ecrf.widget: partial-date`` on a string
    whose ``pattern`` accepts ``YYYY``, ``YYYY-MM`` and ``YYYY-MM-DD``): year, month and day inputs,
    month and day with an "unknown" choice."""

    name = "partial-date"
    kind = "partial-date"
    macro = "partial_date"
    field_class = PartialDateInput

    @classmethod
    def matches(cls, schema):
        return (schema.get("x-ecrf") or {}).get("widget") == "partial-date" and _types(schema) <= {"string"}


class Date(FieldType):
    """``format: date``: ``<input type="date">``; stored as ``YYYY-MM-DD``."""

    name = "date"
    kind = "date"
    macro = "date"
    field_class = DateInput

    @classmethod
    def matches(cls, schema):
        return schema.get("format") == "date" and _types(schema) <= {"string"}


class DateTime(FieldType):
    """``format: date-time``: ``<input type="datetime-local">`` in the site's time zone; stored as
    RFC 3339 with the zone's offset at that moment."""

    name = "date-time"
    kind = "datetime"
    macro = "datetime"
    field_class = DateTimeInput

    @classmethod
    def matches(cls, schema):
        return schema.get("format") == "date-time" and _types(schema) <= {"string"}


class Time(FieldType):
    """``format: time``: ``<input type="time">``; stored as RFC 3339 ``HH:MM:SS`` with the site
    zone's offset."""

    name = "time"
    kind = "time"
    macro = "time"
    field_class = TimeInput

    @classmethod
    def matches(cls, schema):
        return schema.get("format") == "time" and _types(schema) <= {"string"}


class TextArea(FieldType):
    """Multi-line text (``x-ecrf.widget: textarea``)."""

    name = "textarea"
    kind = "text"
    macro = "textarea"

    @classmethod
    def matches(cls, schema):
        return (schema.get("x-ecrf") or {}).get("widget") == "textarea" and _types(schema) <= {"string"}


class Text(FieldType):
    """One line of text."""

    name = "text"
    kind = "string"
    macro = "text"

    @classmethod
    def matches(cls, schema):
        return _types(schema) == {"string"} or (not _types(schema) and (
            "pattern" in schema or "maxLength" in schema or "minLength" in schema))


class Integer(FieldType):
    """A whole number, with its unit beside it."""

    name = "integer"
    kind = "integer"
    macro = "number"
    field_class = IntegerInput

    @classmethod
    def matches(cls, schema):
        return _types(schema) == {"integer"}


class Number(FieldType):
    """A number, with its unit beside it and ``x-ecrf.decimals`` as the step."""

    name = "number"
    kind = "number"
    macro = "number"
    field_class = NumberInput

    @classmethod
    def matches(cls, schema):
        return _types(schema) in ({"number"}, {"number", "integer"})


class JSONText(FieldType):
    """Anything else (an object, a mixed type, an array of plain values): JSON typed in a text area.
    Rare in study files; it keeps every schema usable rather than refusing it."""

    name = "json"
    kind = "json"
    macro = "textarea"
    field_class = JSONInput

    @classmethod
    def matches(cls, schema):
        return True


#: In order: the first type whose ``matches`` holds is used.
REGISTRY = (Calculated, RepeatingGroup, Checkboxes, Radio, Select, PartialDate, Date, DateTime, Time,
            TextArea, Text, Integer, Number, JSONText)


def field_type_for(schema):
    """The FieldType class for a (resolved) property schema."""
    return next(t for t in REGISTRY if t.matches(schema))
