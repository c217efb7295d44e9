"""A REDCap data dictionary (and its instrument-event mapping) as an ecrf study definition.

Every REDCap field type converts: text with each validation type, notes, dropdown, radio, checkbox,
yesno, truefalse, calc, slider and descriptive text (as a section's description); file, signature
and sql fields have nothing to hold them and are left out with a warning. Branching logic becomes
``x-ecrf.show_if`` and calculations ``x-ecrf.calculate`` through ``redcap_logic``, which translates
and never evaluates. What cannot be translated is a warning on its field and the rest converts;
what makes the dictionary itself wrong (a duplicate or malformed field name, an unknown field type,
circular branching logic) refuses the whole file with every such problem named.
"""
import re

from ecrf.exchange import redcap_logic
from ecrf.exchange.redcap_logic import Untranslatable
from ecrf.exchange.studyfiles import (FORM_KEY, KEY, MAX_TEXT, STUDY_ID, Conversion, ConversionRefused,
                                      make_key, plain_text, read_csv)
from ecrf.errors import Invalid
from ecrf.rules.expression import ExpressionError
from ecrf.rules.expression import parse as parse_expression

SCHEMA = "https://json-schema.org/draft/2020-12/schema"

#: Dictionary columns, by the names of the CSV download and of the API's metadata export.
COLUMNS = {
    "variable / field name": "field_name", "form name": "form_name", "section header": "section_header",
    "field type": "field_type", "field label": "field_label",
    "choices, calculations, or slider labels": "choices", "field note": "field_note",
    "text validation type or show slider number": "validation", "text validation min": "min",
    "text validation max": "max", "identifier?": "identifier",
    "branching logic (show field only if...)": "branching_logic", "required field?": "required",
    "custom alignment": "custom_alignment", "question number (surveys only)": "question_number",
    "matrix group name": "matrix_group", "matrix ranking?": "matrix_ranking",
    "field annotation": "annotation",
    # the API's names
    "field_name": "field_name", "form_name": "form_name", "field_type": "field_type",
    "field_label": "field_label", "select_choices_or_calculations": "choices", "field_note": "field_note",
    "text_validation_type_or_show_slider_number": "validation", "text_validation_min": "min",
    "text_validation_max": "max", "branching_logic": "branching_logic", "required_field": "required",
    "matrix_group_name": "matrix_group", "field_annotation": "annotation",
}

FIELD_TYPES = {"text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc", "slider",
               "descriptive", "file", "sql"}

_DATE = {"type": "string", "format": "date"}
_DATETIME = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]$"}
_DATETIME_S = {"type": "string",
               "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"}

#: Text validation type -> (schema, kind, placeholder). Dates are stored in ISO order whatever the
#: order REDCap shows them in; REDCap's date-times carry no zone, so they stay local text.
VALIDATION = {
    "date_ymd": (_DATE, "date", None), "date_mdy": (_DATE, "date", None), "date_dmy": (_DATE, "date", None),
    "datetime_ymd": (_DATETIME, "date", "YYYY-MM-DD HH:MM"),
    "datetime_mdy": (_DATETIME, "date", "YYYY-MM-DD HH:MM"),
    "datetime_dmy": (_DATETIME, "date", "YYYY-MM-DD HH:MM"),
    "datetime_seconds_ymd": (_DATETIME_S, "date", "YYYY-MM-DD HH:MM:SS"),
    "datetime_seconds_mdy": (_DATETIME_S, "date", "YYYY-MM-DD HH:MM:SS"),
    "datetime_seconds_dmy": (_DATETIME_S, "date", "YYYY-MM-DD HH:MM:SS"),
    "time": ({"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"}, "text", "HH:MM"),
    "time_hh_mm_ss": ({"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"},
                      "text", "HH:MM:SS"),
    "time_mm_ss": ({"type": "string", "pattern": r"^[0-5][0-9]:[0-5][0-9]$"}, "text", "MM:SS"),
    "integer": ({"type": "integer"}, "integer", None),
    "number": ({"type": "number"}, "number", None),
    "number_comma_decimal": ({"type": "number"}, "number", None),
    "email": ({"type": "string", "format": "email", "maxLength": 254}, "text", None),
    "phone": ({"type": "string", "pattern": r"^\(?[2-9][0-9]{2}\)?[-. ]?[2-9][0-9]{2}[-. ]?[0-9]{4}$"},
              "text", "(555) 555-5555"),
    "phone_australia": ({"type": "string", "pattern": r"^\(?0[2-9]\)?[ ]?[0-9]{4}[ ]?[0-9]{4}$"}, "text", None),
    "zipcode": ({"type": "string", "pattern": r"^[0-9]{5}(-[0-9]{4})?$"}, "text", None),
    "postalcode_australia": ({"type": "string", "pattern": r"^[0-9]{4}$"}, "text", None),
    "postalcode_canada": ({"type": "string", "pattern": r"^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]$"},
                          "text", None),
    "postalcode_french": ({"type": "string", "pattern": r"^[0-9]{5}$"}, "text", None),
    "postalcode_germany": ({"type": "string", "pattern": r"^[0-9]{5}$"}, "text", None),
    "ssn": ({"type": "string", "pattern": r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$"}, "text", None),
    "mrn_10d": ({"type": "string", "pattern": r"^[0-9]{10}$"}, "text", None),
    "mrn_generic": ({"type": "string", "pattern": r"^[A-Za-z0-9-]+$"}, "text", None),
    "vmrn": ({"type": "string", "pattern": r"^[0-9]{4,10}$"}, "text", None),
    "alpha_only": ({"type": "string", "pattern": r"^[A-Za-z]+$"}, "text", None),
}
_DECIMALS = re.compile(r"^number_([1-4])dp(_comma_decimal)?$")

#: Action tags ecrf carries over; every other one is a warning on its field.
_ACTION_TAG = re.compile(r"@([A-Z][A-Z0-9_-]*)(?:\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|(\S+)))?")
_PIPING = re.compile(r"\[[a-z][a-z0-9_]*(?:\([^)]*\))?\]")


def _columns(header):
    names = []
    for i, name in enumerate(header):
        key = COLUMNS.get(name.strip().lower().lstrip("\ufeff"))
        if key is None:
            raise Invalid(f"column {i + 1} ({name!r}) is not a column of a REDCap data dictionary")
        names.append(key)
    for needed in ("field_name", "form_name", "field_type", "field_label"):
        if needed not in names:
            raise Invalid(f"this is not a REDCap data dictionary: it has no {needed!r} column")
    return names


def read_dictionary(path, encoding=None):
    """The rows of a data dictionary as dicts with the canonical column names, in file order."""
    header, rows = read_csv(path, encoding, "data dictionary")
    names = _columns(header)
    out = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            raise Invalid(f"line {line}: {len(row)} cells, but the header has {len(names)} columns")
        field = {name: "" for name in COLUMNS.values()}
        field.update({name: cell.strip() for name, cell in zip(names, row, strict=False)})
        field["line"] = line
        out.append(field)
    if not out:
        raise Invalid(f"{path}: the data dictionary has no fields")
    return out


def parse_choices(text):
    """[(code, label)] of ``1, Yes | 2, No`` (codes kept as text, as REDCap stores them)."""
    out = []
    for part in re.split(r"\s*\|\s*|\\n|\n", text or ""):
        if not part.strip():
            continue
        code, sep, label = part.partition(",")
        out.append((code.strip(), label.strip() if sep else code.strip()))
    return out


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


class _FormBuilder:
    """One instrument: properties, required, sections, and the field kinds the logic needs."""

    def __init__(self, key, title):
        self.key, self.title = key, title
        self.properties, self.required, self.sections, self.conditions = {}, [], [], []
        self.section_ids = set()
        self.section = None
        self.kinds = {}
        self.matrix = None

    def new_section(self, title, description=None, hint="section"):
        section = {"id": make_key(title or hint, self.section_ids, "section"),
                   "title": plain_text(title) or hint}
        if description:
            section["description"] = description
        self.sections.append(section)
        self.section = section["id"]

    def document(self):
        doc = {"$schema": SCHEMA, "title": self.title, "type": "object", "properties": self.properties}
        if self.required:
            doc["required"] = self.required
        if self.conditions:
            doc["allOf"] = self.conditions
        if self.sections:
            doc["x-ecrf"] = {"sections": self.sections}
        return doc


def convert_dictionary(rows, study_id, title=None, *, events=None, repeating=()):
    """A ``Conversion`` of dictionary ``rows`` (``read_dictionary``) into study ``study_id``.

    ``events`` is the instrument-event mapping (``read_events``) of a longitudinal project: each event
    becomes a visit; without it the project has one visit, ``baseline``, with every instrument.
    Forms in ``repeating`` (REDCap's repeating instruments) become log forms.
    """
    if not STUDY_ID.match(study_id or ""):
        raise Invalid(f"the study id {study_id!r} must be lower-case letters, digits and '-' "
                      "(at most 63, starting with a letter or digit)")
    problems, seen = [], {}
    for row in rows:
        name, ftype = row["field_name"], row["field_type"].lower()
        where = f"line {row['line']}: field {name!r}"
        if not KEY.match(name):
            problems.append((where, "a field name must be lower-case letters, digits and _, starting "
                                    "with a letter, at most 63 characters"))
        elif name in seen:
            problems.append((where, f"duplicate field name (first on line {seen[name]})"))
        else:
            seen[name] = row["line"]
        if ftype not in FIELD_TYPES:
            problems.append((where, f"unknown field type {row['field_type']!r} (REDCap's types: "
                                    f"{', '.join(sorted(FIELD_TYPES))})"))
        if not FORM_KEY.match(row["form_name"]):
            problems.append((where, f"form name {row['form_name']!r} must be lower-case letters, digits "
                                    "and _, starting with a letter, at most 50 characters"))
    problems += _circular_logic(rows)
    if problems:
        raise ConversionRefused(problems)

    conversion = Conversion({}, {})
    record_id = rows[0]["field_name"]
    conversion.warn(f"{rows[0]['form_name']}/{record_id}",
                    "the record id field is the subject id in ecrf; left out of the form")
    builders = {}
    for row in rows[1:]:
        form = row["form_name"]
        if form not in builders:
            builders[form] = _FormBuilder(form, form.replace("_", " ").capitalize())
        builder = builders[form]
        if row["field_type"].lower() in ("text", "notes", "dropdown", "radio", "checkbox", "yesno",
                                         "truefalse", "calc", "slider"):
            builder.kinds[row["field_name"]] = _kind(row)
    for row in rows[1:]:
        _add_field(conversion, builders[row["form_name"]], row)
    for builder in builders.values():
        if not builder.properties:
            conversion.warn(builder.key, "the instrument has no field ecrf can hold; left out")
            continue
        conversion.forms[builder.key] = builder.document()
    if not conversion.forms:
        raise ConversionRefused([("dictionary", "no instrument has a field ecrf can hold")])
    conversion.study = _study(conversion, study_id, title, events, repeating)
    return conversion


def _kind(row):
    ftype = row["field_type"].lower()
    if ftype in ("dropdown", "radio"):
        return ("choice", tuple(code for code, _ in parse_choices(row["choices"])))
    if ftype in ("yesno", "truefalse"):
        return ("choice", ("1", "0"))
    if ftype == "checkbox":
        return "checkbox"
    if ftype in ("calc",):
        return "number"
    if ftype == "slider":
        return "integer"
    if ftype == "text":
        validation = row["validation"].lower()
        if validation in VALIDATION:
            return VALIDATION[validation][1]
        if _DECIMALS.match(validation):
            return "number"
    return "text"


def _circular_logic(rows):
    """Problems for branching logic that depends, through other fields, on its own field."""
    deps = {}
    for row in rows:
        if row["branching_logic"]:
            try:
                deps[row["field_name"]] = redcap_logic.references(redcap_logic.parse(row["branching_logic"]))
            except Untranslatable:
                continue  # reported as a warning on the field
    problems, done = [], set()

    def visit(name, path):
        if name in path:
            cycle = path[path.index(name):] + [name]
            key = frozenset(cycle)
            if key not in done:
                done.add(key)
                problems.append((f"field {cycle[0]!r}", "circular branching logic: " + " -> ".join(cycle)))
            return
        for dep in sorted(deps.get(name, ())):
            visit(dep, path + [name])

    for name in deps:
        visit(name, [])
    return problems


def _label(conversion, where, text, name):
    label = plain_text(text)
    if "\ufffd" in label:
        conversion.warn(where, "the label holds U+FFFD (characters lost before the export); kept as is")
    if _PIPING.search(label):
        conversion.warn(where, "piping (a [field] in the label) is not supported; shown as written")
    if not label:
        label = name
    return label


def _add_field(conversion, builder, row):
    name, ftype = row["field_name"], row["field_type"].lower()
    where = f"{builder.key}/{name}"
    if row["section_header"]:
        builder.new_section(row["section_header"])
    if row["matrix_group"] and row["matrix_group"] != builder.matrix and not row["section_header"]:
        builder.new_section(row["matrix_group"].replace("_", " ").capitalize(), hint="matrix")
    builder.matrix = row["matrix_group"] or None
    if ftype == "descriptive":
        text = plain_text(row["field_label"], 2000)
        if row["section_header"]:
            builder.sections[-1]["description"] = text
        elif text:
            builder.new_section(plain_text(row["field_label"]), text if len(text) > MAX_TEXT else None,
                                hint="note")
        return
    if ftype in ("file", "sql") or row["validation"].lower() == "signature":
        what = "signature" if row["validation"].lower() == "signature" else ftype
        conversion.warn(where, f"{what} fields have no equivalent in ecrf; left out")
        return
    schema, extra = _schema(conversion, where, row, builder)
    schema = {"title": _label(conversion, where, row["field_label"], name)} | schema
    note = plain_text(row["field_note"], 2000)
    if note:
        schema["description"] = note
    if builder.section:
        extra["section"] = builder.section
    _logic(conversion, where, row, builder, extra)
    _annotation(conversion, where, row, schema, extra)
    if row["identifier"].lower() == "y":
        schema["$comment"] = "identifier: personal data (REDCap identifier field)"
    if extra:
        schema["x-ecrf"] = extra
    builder.properties[name] = schema
    if row["required"].lower() == "y" and ftype != "calc":
        if "show_if" in extra:  # REDCap requires a field only while its branching logic shows it
            builder.conditions.append({"if": extra["show_if"], "then": {"required": [name]}})
        else:
            builder.required.append(name)


def _choices(conversion, where, row):
    choices, labels = [], {}
    for code, label in parse_choices(row["choices"]):
        if code in labels:
            conversion.warn(where, f"choice code {code!r} is given twice; the first is kept")
            continue
        choices.append(code)
        labels[code] = plain_text(label) or code
    return choices, labels


def _bounds(conversion, where, row, schema, numeric):
    for column, keyword in (("min", "minimum"), ("max", "maximum")):
        text = row[column]
        if not text:
            continue
        value = _number(text) if numeric else None
        if value is None:
            if schema.get("format") == "date" and re.match(r"^\d{4}-\d{2}-\d{2}$", text):
                conversion.warn(where, f"the {column}imum date {text} cannot be checked by JSON Schema; "
                                       "add it as a soft check")
            elif text.lower() not in ("today", "now"):
                conversion.warn(where, f"the {column}imum {text!r} is not a number; left out")
            continue
        schema[keyword] = value


def _schema(conversion, where, row, builder):
    """(schema, x-ecrf) of one field."""
    ftype, validation = row["field_type"].lower(), row["validation"].lower()
    if ftype in ("dropdown", "radio"):
        choices, labels = _choices(conversion, where, row)
        if not choices:
            conversion.warn(where, "a choice field without choices; converted to text")
            return {"type": "string"}, {}
        return {"enum": choices}, {"widget": "select" if ftype == "dropdown" else "radio", "labels": labels}
    if ftype == "checkbox":
        choices, labels = _choices(conversion, where, row)
        if not choices:
            conversion.warn(where, "a checkbox field without choices; converted to text")
            return {"type": "string"}, {}
        return ({"type": "array", "uniqueItems": True, "items": {"enum": choices}},
                {"widget": "checkboxes", "labels": labels})
    if ftype in ("yesno", "truefalse"):
        words = ("Yes", "No") if ftype == "yesno" else ("True", "False")
        return {"enum": ["1", "0"]}, {"widget": "radio", "labels": {"1": words[0], "0": words[1]}}
    if ftype == "notes":
        return {"type": "string", "maxLength": 65535}, {"widget": "textarea"}
    if ftype == "slider":
        schema = {"type": "integer", "minimum": 0, "maximum": 100}
        _bounds(conversion, where, row, schema, True)
        extra = {}
        ends = [plain_text(p) for p in re.split(r"\s*\|\s*", row["choices"]) if p.strip()]
        if ends:
            schema["description"] = " \u2026 ".join(ends)
        return schema, extra
    if ftype == "calc":
        extra = {}
        schema = {"type": "number", "readOnly": True}
        try:
            expression = redcap_logic.to_expression(redcap_logic.parse(row["choices"]), builder.kinds)
            parse_expression(expression)
            extra["calculate"] = expression
        except (Untranslatable, ExpressionError) as exc:
            conversion.warn(where, f"calculation {row['choices']!r} not translated ({exc}); the field is "
                                   "kept as a read-only number without a calculation")
        return schema, extra
    # text
    if not validation:
        return {"type": "string", "maxLength": 2000}, {}
    decimals = _DECIMALS.match(validation)
    if decimals:
        schema, extra = {"type": "number"}, {"decimals": int(decimals.group(1))}
        _bounds(conversion, where, row, schema, True)
        return schema, extra
    if validation not in VALIDATION:
        conversion.warn(where, f"text validation {row['validation']!r} is not known; converted to text")
        return {"type": "string", "maxLength": 2000}, {}
    base, kind, placeholder = VALIDATION[validation]
    schema, extra = dict(base), {}
    if placeholder:
        extra["placeholder"] = placeholder
    if base is _DATETIME or base is _DATETIME_S:
        conversion.warn(where, "REDCap date-times have no time zone: stored as local text "
                               f"{placeholder}")
    _bounds(conversion, where, row, schema, kind in ("integer", "number"))
    return schema, extra


def _logic(conversion, where, row, builder, extra):
    logic = row["branching_logic"]
    if not logic:
        return
    try:
        condition = redcap_logic.to_condition(redcap_logic.parse(logic), builder.kinds)
    except Untranslatable as exc:
        conversion.warn(where, f"branching logic {logic!r} not translated ({exc}); the field is always shown")
        return
    extra["show_if"] = condition


def _annotation(conversion, where, row, schema, extra):
    text = row["annotation"]
    if not text:
        return
    rest = text
    for m in _ACTION_TAG.finditer(text):
        tag = m.group(1)
        value = next((g for g in m.groups()[1:] if g is not None), None)
        if tag == "READONLY":
            schema["readOnly"] = True
        elif tag == "DEFAULT" and value is not None:
            default = value
            if schema.get("type") in ("integer", "number"):
                default = _number(value)
            if default is not None and (("enum" not in schema) or default in schema["enum"]):
                schema["default"] = default
            else:
                conversion.warn(where, f"@DEFAULT={value!r} does not fit the field; left out")
        else:
            conversion.warn(where, f"action tag @{tag} is not supported; left out")
        rest = rest.replace(m.group(0), " ")
    rest = plain_text(rest, 1000)
    if rest:
        schema["$comment"] = f"REDCap field annotation: {rest}"


def read_events(path, encoding=None):
    """The instrument-event mapping (REDCap's formEventMapping CSV: arm_num, unique_event_name,
    form) as [(arm, event, form)] in file order."""
    header, rows = read_csv(path, encoding, "instrument-event mapping")
    lower = [h.lower() for h in header]
    for needed in ("unique_event_name", "form"):
        if needed not in lower:
            raise Invalid(f"{path}: an instrument-event mapping needs a {needed!r} column "
                          "(REDCap's formEventMapping: arm_num, unique_event_name, form)")
    ev, fm = lower.index("unique_event_name"), lower.index("form")
    arm = lower.index("arm_num") if "arm_num" in lower else None
    out = []
    for line, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(ev, fm):
            raise Invalid(f"{path}: line {line} is too short")
        out.append(((row[arm].strip() if arm is not None else "1") or "1", row[ev].strip(), row[fm].strip()))
    return out


def _study(conversion, study_id, title, events, repeating):
    forms = list(conversion.forms)
    unknown = sorted(set(repeating) - set(forms))
    if unknown:
        raise Invalid(f"--repeating names instruments not in the dictionary: {', '.join(unknown)}")
    log_forms = [f for f in forms if f in repeating]
    study = {"id": study_id, "title": title or study_id}
    if not events:
        study["visits"] = [{"id": "baseline", "label": "Baseline", "day": 0,
                            "forms": [f for f in forms if f not in log_forms]}]
    else:
        study.update(_visits(conversion, events, forms, log_forms))
    if log_forms:
        study["log_forms"] = log_forms
    used = {f for v in study["visits"] for f in v["forms"]} | set(log_forms)
    for form in forms:
        if form not in used:
            conversion.warn(form, "the instrument is in no event; collected at no visit, so left out")
            del conversion.forms[form]
    return study


def _visits(conversion, events, forms, log_forms):
    arms = sorted({a for a, _, _ in events}, key=lambda a: (len(a), a))
    visits, order, taken = {}, [], set()
    for arm, event, form in events:
        base = re.sub(r"_arm_\d+$", "", event)
        if event not in visits:
            key = base if len(arms) == 1 else event
            visits[event] = {"id": make_key(key, taken, "visit"),
                             "label": base.replace("_", " ").capitalize() or event, "forms": []}
            if len(arms) > 1:
                visits[event]["arms"] = [f"arm_{arm}"]
            order.append(event)
        if form not in forms:
            if form not in conversion.forms:
                conversion.warn(f"events/{event}", f"instrument {form!r} is not in the dictionary; skipped")
            continue
        if form in log_forms:
            continue
        if form not in visits[event]["forms"]:
            visits[event]["forms"].append(form)
    out = []
    for day, event in enumerate(order):
        visit = visits[event]
        out.append({"id": visit["id"], "label": visit["label"], "day": day, "forms": visit["forms"]}
                   | ({"arms": visit["arms"]} if "arms" in visit else {}))
    conversion.warn("study.json", "REDCap's events carry no schedule here: visit days are their order "
                                  "(0, 1, 2, ...); set each visit's day and window in study.json")
    result = {"visits": out}
    if len(arms) > 1:
        result["arms"] = [{"id": f"arm_{a}", "label": f"Arm {a}"} for a in arms]
    return result


def import_redcap(path, study_id, output, *, title=None, events_path=None, repeating=(), encoding=None,
                  force=False):
    """Convert the dictionary at ``path`` and write the study to ``output``; return the Conversion
    and the study as loaded from the folder written."""
    from ecrf.exchange.studyfiles import write_study

    rows = read_dictionary(path, encoding)
    events = read_events(events_path, encoding) if events_path else None
    conversion = convert_dictionary(rows, study_id, title, events=events, repeating=repeating)
    return conversion, write_study(conversion, output, force=force)
