"""[2] What the form page shows: a bound form with its values, errors placed at their inputs,
missing-data flags, soft-check results, visibility, calculated previews and a conflict, if any.

Views build a FormPage (``FormPage.show`` for a stored record, ``FormPage.submitted`` for a post)
and hand it to templates/capture/form.html; the template asks it, never the database.
"""
import dataclasses
import json

from ecrf.formgen import build, convert, fieldtypes
from ecrf.rules.derive import derive, hidden_fields

#: Buttons: what the post asks for.
ACTION = "ecrf-action"
ADD_ROW = "ecrf-add"
REMOVE_ROW = "ecrf-remove"


@dataclasses.dataclass
class Conflict:
    """Someone else saved the record meanwhile: its version and values now."""

    version: int
    data: dict
    missing: dict
    status: str


class FormPage:
    def __init__(self, layout, form, context, document, missing, *, editable=True, rows=None,
                 checks=None, submitted=False):
        self.layout = layout
        self.form = form
        self.context = context
        self.document = document
        self.missing = missing or {}
        self.editable = editable
        self.rows = rows or {}
        self.checks = checks or {}
        self.submitted = submitted
        self.errors = {}            # pointer -> [message]
        self.parse_errors = {}      # pointer -> [message] of what could not be read at all
        self.conflict = None
        self.notice = None
        self._hidden = set(hidden_fields(layout.form_def, document))
        self._preview = derive(layout.form_def, document)

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def show(cls, layout, document, missing, context, version, *, editable=True, checks=None):
        """The page of a stored record (or of a new one: ``document`` holds the defaults)."""
        data = convert.form_data(layout, document, missing, context)
        data[build.VERSION_FIELD] = version
        form = layout.form_class(data=data)
        page = cls(layout, form, context, document, missing, editable=editable, checks=checks)
        if editable:
            page._pad_groups()
        return page

    @classmethod
    def submitted(cls, layout, formdata, context, previous, *, checks=None):
        """The page of a post: what was typed, converted; row buttons applied (without saving)."""
        form = layout.form_class(formdata)
        notice = None
        if formdata.get(ADD_ROW):
            group = next((s for s in layout.fields if s.kind == "group" and s.name == formdata[ADD_ROW]), None)
            if group is not None:
                form._fields[group.attr].append_entry()
                notice = f"A row was added to {group.title}; nothing is saved yet."
        elif formdata.get(REMOVE_ROW):
            notice = _remove_row(layout, form, formdata[REMOVE_ROW])
        converted = convert.to_document(layout, form, context, previous)
        page = cls(layout, form, context, converted.document, converted.missing, rows=converted.rows,
                   checks=checks, submitted=True)
        page.parse_errors = converted.errors
        page.notice = notice
        page.add_errors((p, m) for p, messages in converted.errors.items() for m in messages)
        return page

    @property
    def row_action(self):
        return self.notice is not None

    def _pad_groups(self):
        """An editable group shows at least one row (and at least ``minItems``) to type into."""
        for spec in self.layout.fields:
            if spec.kind == "group" and spec.attr in self.form._fields:
                field = self.form._fields[spec.attr]
                while len(field.entries) < max(1, spec.min_items) and (
                        spec.max_items is None or len(field.entries) < spec.max_items):
                    field.append_entry()

    # --- values and state -------------------------------------------------------------------

    @property
    def version(self):
        return self.form._fields[build.VERSION_FIELD].data

    def set_version(self, version):
        field = self.form._fields[build.VERSION_FIELD]
        field.data, field.raw_data = version, None

    @property
    def reason(self):
        """The reason for change: the chosen common reason, with the details typed."""
        choice = self.form._fields[build.REASON_FIELD].data
        text = self.form._fields[build.REASON_TEXT_FIELD].data
        if choice and text:
            return f"{choice}: {text}"
        return text or choice

    def visible(self, spec):
        """Whether a field is shown: its condition holds, or it has an error to fix."""
        return spec.name not in self._hidden or bool(self.errors.get(_pointer(spec.name)))

    def section_visible(self, section):
        """A section is shown while any of its fields is."""
        return any(self.visible(spec) for spec in section.fields)

    def calculated(self, spec):
        """The value a calculated field shows: stored, or (after a post) computed from what was typed."""
        return self._preview.get(spec.name)

    def value(self, spec):
        return self.document.get(spec.name)

    def flag(self, spec):
        return self.missing.get(_pointer(spec.name)) or {}

    def checks_for(self, spec):
        return self.checks.get(_pointer(spec.name), [])

    def field(self, spec):
        return self.form._fields.get(spec.attr)

    def flag_field(self, spec):
        return self.form._fields.get(build.missing_attr(spec.name))

    def flag_reason_field(self, spec):
        return self.form._fields.get(build.missing_reason_attr(spec.name))

    def control(self, name):
        return self.form._fields[name]

    def entries(self, spec):
        field = self.form._fields.get(spec.attr)
        return field.entries if field is not None else []

    def blank_row(self, spec):
        """An empty row named ``<group>-__index__``: the template forms.js copies to add a row."""
        field = self.form._fields[spec.attr]
        entry = field.meta.bind_field(field._form, field.unbound_field, {
            "name": f"{field.name}-__index__", "id": f"{field.id}-__index__", "_meta": field.meta,
            "translations": field._translations})
        entry.process(None)
        return entry

    def rules_json(self):
        """The show_if conditions and calculation trees forms.js mirrors (the server stays the truth)."""
        return self.layout.browser_rules()

    # --- errors -----------------------------------------------------------------------------

    def add_errors(self, errors):
        for pointer, message in errors:
            messages = self.errors.setdefault(pointer, [])
            if message not in messages:
                messages.append(message)

    def errors_at(self, pointer):
        return self.errors.get(pointer, [])

    def cell_pointer(self, spec, entry, column):
        """The JSON pointer of one cell of a group, as the document numbers its rows."""
        index = self._row_index(spec, entry)
        return None if index is None else _pointer(spec.name, index, column.name)

    def row_pointer(self, spec, entry):
        index = self._row_index(spec, entry)
        return None if index is None else _pointer(spec.name, index)

    def _row_index(self, spec, entry):
        if self.submitted:
            kept = self.rows.get(spec.name, [])
            return next((i for i, e in enumerate(kept) if e is entry), None)
        field = self.form._fields.get(spec.attr)
        return next((i for i, e in enumerate(field.entries) if e is entry), None) if field else None

    def anchor(self, pointer):
        """The id of the input an error at ``pointer`` concerns (for the error summary's links)."""
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        if not parts:
            return None
        if pointer == "/reason":
            return build.REASON_FIELD
        spec = self.layout.field(parts[0])
        if spec is None:
            return None
        if spec.calculate is not None or spec.read_only:
            return f"{spec.attr}-output"
        field = self.form._fields.get(spec.attr)
        if spec.kind == "group" and field is not None and len(parts) >= 2 and parts[1].isdigit():
            entries = self.rows.get(spec.name, []) if self.submitted else field.entries
            index = int(parts[1])
            if index < len(entries):
                entry = entries[index]
                column = spec.column(parts[2]) if len(parts) > 2 else None
                sub = entry.form._fields.get(column.attr) if column else None
                if sub is not None:
                    return input_id(column, sub)
                return entry.id
        if field is None:
            return None
        return input_id(spec, field)

    def summary(self):
        """[(label, anchor id or None, message)] of every error, in page order."""
        order = {s.name: i for i, s in enumerate(f for sec in self.layout.sections for f in sec.fields)}

        def key(item):
            name = item[0].split("/")[1] if item[0].count("/") else ""
            return (order.get(name, len(order)), item[0])

        out = []
        for pointer, messages in sorted(self.errors.items(), key=key):
            label = self._label(pointer)
            for message in messages:
                out.append((label, self.anchor(pointer), message))
        return out

    def _label(self, pointer):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        if not parts:
            return "Form"
        if pointer == "/reason":
            return "Reason for change"
        spec = self.layout.field(parts[0])
        if spec is None:
            return parts[0]
        label = spec.title
        if spec.kind == "group" and len(parts) >= 2 and parts[1].isdigit():
            label += f", row {int(parts[1]) + 1}"
            if len(parts) > 2 and spec.column(parts[2]):
                label += f", {spec.column(parts[2]).title}"
        return label

    # --- conflicts and display ---------------------------------------------------------------

    def set_conflict(self, version, data, missing, status):
        self.conflict = Conflict(version, data, missing, status)
        self.set_version(version)

    def theirs(self, spec):
        """When the record changed meanwhile and differs from what was typed here: its value now
        (as text), else None."""
        if self.conflict is None:
            return None
        pointer = _pointer(spec.name)
        mine, theirs = self.document.get(spec.name), self.conflict.data.get(spec.name)
        my_flag, their_flag = self.missing.get(pointer), self.conflict.missing.get(pointer)
        if spec.calculate is not None:
            return None
        if fieldtypes.same_json(mine, theirs) and my_flag == their_flag:
            return None
        if their_flag:
            return f"marked {their_flag.get('flag', '').replace('_', ' ')}: {their_flag.get('reason', '')}"
        return self.display(spec, theirs)

    def display(self, spec, value):
        """A stored value as text for a person: labels for codes, the site's zone for date-times."""
        if value is None:
            return "(empty)"
        if spec.kind == "choice":
            return spec.label_of(value)
        if spec.kind == "choices" and isinstance(value, list):
            return ", ".join(spec.label_of(v) for v in value) or "(empty)"
        if spec.kind == "group" and isinstance(value, list):
            return f"{len(value)} row{'s' if len(value) != 1 else ''}: " + "; ".join(
                ", ".join(f"{c.title} {self.display(c, row.get(c.name))}" for c in spec.columns
                          if isinstance(row, dict) and c.name in row) for row in value)
        if spec.kind == "datetime":
            parsed = convert._parse_datetime(value)
            if parsed is not None and parsed.tzinfo is not None:
                local = parsed.astimezone(self.context.tz)
                return f"{local.strftime('%Y-%m-%d %H:%M')} ({self.context.zone_name})"
        if spec.kind in ("integer", "number") or (spec.kind == "calculated" and isinstance(value, (int, float))):
            if spec.choices and not isinstance(value, bool):
                return spec.label_of(value)
            text = fieldtypes.format_number(value)
            return f"{text} {spec.unit}" if spec.unit else text
        if spec.kind == "calculated" and spec.choices:
            return spec.label_of(value)
        if isinstance(value, bool):
            return spec.label_of(value) if spec.choices else ("Yes" if value else "No")
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return str(value)


def input_id(spec, field):
    """The id of the first input of a field (what an error's link focuses)."""
    if spec.kind in ("choice", "choices"):
        return f"{field.id}-0" if spec.macro != "select" else field.id
    if spec.kind == "partial-date":
        return f"{field.id}-year"
    return field.id


def _remove_row(layout, form, target):
    for spec in layout.fields:
        if spec.kind != "group":
            continue
        field = form._fields.get(spec.attr)
        for i, entry in enumerate(field.entries if field else ()):
            if entry.name == target:
                field.entries.pop(i)
                return f"A row was removed from {spec.title}; nothing is saved yet."
    return None


def _pointer(*parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
