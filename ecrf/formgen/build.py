"""[2] A form version → its page layout and WTForms class, built once and cached by version hash.

``layout_for(form_def)`` resolves every property (local ``$ref`` included), picks its FieldType from
the registry, orders fields and sections (``x-ecrf.order`` and ``x-ecrf.sections``, otherwise the
order of ``properties``) and builds the WTForms class by subclass + ``setattr`` before any instance
exists, as WTForms requires for dynamic forms. A form version never changes, so neither does its
layout: the cache is keyed by the version's content hash.

Names on the page: a field's inputs are named after the field (``sbp``; rows ``tubes-0-tube``).
A field whose name would shadow something of WTForms' Form (``data``, ``errors``, ``validate_x``…)
is named ``x-<name>`` instead; page controls and missing-data flags contain a ``-`` and so can never
collide with a field (field names are ``[a-z][a-z0-9_]*``).
"""
import collections
import dataclasses
import threading

from wtforms import Form

from ecrf.definitions.model import ref_target, thaw
from ecrf.formgen import fieldtypes
from ecrf.rules.expression import parse

#: Missing-data flags and how the page names them.
MISSING_FLAGS = {"not_done": "Not done", "unknown": "Unknown", "not_applicable": "Not applicable"}
#: Common reasons for changing saved data (the page adds free text).
CHANGE_REASONS = ("Data entry error", "Transcription error from source", "Source document corrected",
                  "New information received", "Answer to a query", "Other")

VERSION_FIELD = "ecrf-version"
REASON_FIELD = "ecrf-reason"
REASON_TEXT_FIELD = "ecrf-reason-text"

#: JSON Schema keywords forms.js evaluates in a show_if condition; a condition using any other
#: (``$ref``, ``dependentSchemas``…) is decided by the server only and the field stays visible.
BROWSER_KEYWORDS = frozenset({
    "type", "const", "enum", "required", "properties", "allOf", "anyOf", "oneOf", "not", "if", "then",
    "else", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "pattern", "minItems", "maxItems", "contains", "items", "dependentRequired", "multipleOf",
    # annotations, which never change the outcome
    "title", "description", "$comment", "default", "examples", "readOnly", "writeOnly", "deprecated",
    "format", "x-ecrf", "$schema",
})
_RESERVED = frozenset(dir(Form)) | {"meta", "csrf_token"}


def attr_name(name):
    """The WTForms attribute (and HTML name) of a field: its name, unless that is taken by Form."""
    if name in _RESERVED or name.startswith(("filter_", "validate_")):
        return f"x-{name}"
    return name


def missing_attr(name):
    return f"missing-{name}"


def missing_reason_attr(name):
    return f"missing-{name}-reason"


@dataclasses.dataclass(frozen=True, eq=False)
class FieldSpec:
    """One field as the page and the converter see it (a top-level property or a column of a group)."""

    name: str
    attr: str
    schema: dict
    type: type
    title: str
    description: str | None
    required: bool
    read_only: bool
    calculate: object          # rules Expression or None
    show_if: object            # the JSON Schema condition or None
    show_if_in_browser: bool
    unit: str | None
    decimals: int | None
    placeholder: str | None
    missing_flags: tuple
    section: str | None
    choices: tuple
    columns: tuple = ()
    has_default: bool = False
    default: object = None

    @property
    def kind(self):
        return self.type.kind

    @property
    def macro(self):
        return self.type.macro

    @property
    def min_items(self):
        return self.schema.get("minItems", 0)

    @property
    def max_items(self):
        return self.schema.get("maxItems")

    def column(self, name):
        return next((c for c in self.columns if c.name == name), None)

    def label_of(self, value):
        """The label shown for a stored code (the code itself when it is not in the list)."""
        for choice in self.choices:
            if fieldtypes.same_json(choice.value, value):
                return choice.label
        return fieldtypes.label_key(value)

    def browser_rules(self):
        """What forms.js needs to read, show/hide and compute this field (JSON-ready)."""
        rule = {"name": self.name, "attr": self.attr, "kind": self.kind,
                "type": self.schema.get("type") if isinstance(self.schema.get("type"), str) else None}
        if self.choices:
            rule["choices"] = [[c.key, c.value, c.label] for c in self.choices]
        if self.unit:
            rule["unit"] = self.unit
        if self.show_if is not None:
            rule["show_if"] = self.show_if if self.show_if_in_browser else None
        if self.calculate is not None:
            rule["calc"] = self.calculate.tree
            rule["decimals"] = self.decimals
        if self.columns:
            rule["columns"] = [c.browser_rules() for c in self.columns]
        return rule


@dataclasses.dataclass(frozen=True)
class Section:
    id: str | None
    title: str | None
    description: str | None
    fields: tuple


@dataclasses.dataclass(frozen=True, eq=False)
class FormLayout:
    """A form version ready for the page: fields in property order, sections in display order and
    the WTForms class."""

    form_def: object
    fields: tuple            # property order: the order in which conditions and calculations run
    sections: tuple          # display order
    form_class: type

    def field(self, name):
        return next((f for f in self.fields if f.name == name), None)

    def browser_rules(self):
        return {"fields": [f.browser_rules() for f in self.fields]}


# --- resolving schemas ----------------------------------------------------------------------------

def resolve(schema, root, depth=0):
    """``schema`` with a local ``$ref`` merged in (its own keywords win), followed up to 20 times."""
    if not isinstance(schema, dict) or "$ref" not in schema or depth > 20:
        return schema
    target = ref_target(root, schema["$ref"])
    if not isinstance(target, dict):
        return {k: v for k, v in schema.items() if k != "$ref"}
    merged = dict(resolve(target, root, depth + 1))
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    if "x-ecrf" in target and "x-ecrf" in schema:  # x-ecrf hints combine key by key
        merged["x-ecrf"] = {**resolve(target, root, depth + 1).get("x-ecrf", {}), **schema["x-ecrf"]}
    return merged


def _in_browser(condition):
    """Whether forms.js can evaluate ``condition`` (only BROWSER_KEYWORDS, at every level)."""
    if isinstance(condition, bool):
        return True
    if not isinstance(condition, dict):
        return False
    for key, value in condition.items():
        if key not in BROWSER_KEYWORDS:
            return False
        if key in ("properties",):
            if not all(_in_browser(v) for v in value.values()):
                return False
        elif key in ("allOf", "anyOf", "oneOf"):
            if not all(_in_browser(v) for v in value):
                return False
        elif key in ("not", "if", "then", "else", "contains", "items"):
            if not _in_browser(value):
                return False
    return True


def _spec(name, schema, root, required, top=True):
    """The FieldSpec of a property. Inside a repeating group (``top`` false) calculations, show_if
    and missing-data flags are not used (docs/study-definitions.md), so they are left out."""
    schema = resolve(schema, root)
    if not isinstance(schema, dict):
        schema = {}
    x = dict(schema.get("x-ecrf") or {})
    if not top:
        for key in ("calculate", "show_if", "missing"):
            x.pop(key, None)
        schema = dict(schema, **{"x-ecrf": x})
    kind = fieldtypes.field_type_for(schema)
    columns = ()
    if kind is fieldtypes.RepeatingGroup:
        items = resolve(schema["items"], root)
        row_required = set(items.get("required", ()))
        columns = tuple(_spec(col, col_schema, root, col in row_required, top=False)
                        for col, col_schema in (items.get("properties") or {}).items())
    labels = x.get("labels") or {}
    choice_schema = resolve(schema.get("items"), root) if kind is fieldtypes.Checkboxes else schema
    missing = x.get("missing") or ()
    calculate = parse(x["calculate"]) if "calculate" in x else None
    show_if = x.get("show_if")
    return FieldSpec(
        name=name, attr=attr_name(name), schema=schema, type=kind,
        title=schema.get("title") or name, description=schema.get("description"),
        required=required, read_only=bool(schema.get("readOnly")) or calculate is not None,
        calculate=calculate, show_if=show_if,
        show_if_in_browser=show_if is None or _in_browser(show_if),
        unit=x.get("unit"), decimals=x.get("decimals"), placeholder=x.get("placeholder"),
        missing_flags=tuple(f for f in missing if f in MISSING_FLAGS) if calculate is None else (),
        section=x.get("section"),
        choices=fieldtypes.choices_for(choice_schema or {}, labels), columns=columns,
        has_default="default" in schema, default=schema.get("default"))


def _build(form_def):
    root = thaw(form_def.schema)
    required = set(root.get("required", ()))
    fields = tuple(_spec(name, schema, root, name in required)
                   for name, schema in (root.get("properties") or {}).items())

    form_x = root.get("x-ecrf") or {}
    order = [n for n in form_x.get("order", ()) if any(f.name == n for f in fields)]
    display = [next(f for f in fields if f.name == n) for n in order]
    display += [f for f in fields if f.name not in order]
    sections = []
    declared = form_x.get("sections") or []
    known = {s["id"] for s in declared}
    loose = tuple(f for f in display if f.section not in known)
    if loose:
        sections.append(Section(None, None, None, loose))
    for section in declared:
        members = tuple(f for f in display if f.section == section["id"])
        if members:
            sections.append(Section(section["id"], section["title"], section.get("description"), members))

    form_class = type(f"Form_{form_def.id}", (Form,), {})
    for spec in fields:
        unbound = spec.type.unbound(spec)
        if unbound is not None:
            setattr(form_class, spec.attr, unbound)
        if spec.missing_flags:
            flag_choices = tuple(fieldtypes.Choice(f, MISSING_FLAGS[f], f) for f in spec.missing_flags)
            setattr(form_class, missing_attr(spec.name),
                    fieldtypes.ChoiceInput("Missing", choices=flag_choices))
            setattr(form_class, missing_reason_attr(spec.name), fieldtypes.TextInput("Reason"))
    setattr(form_class, VERSION_FIELD, fieldtypes.IntegerInput("Version"))
    setattr(form_class, REASON_FIELD, fieldtypes.ChoiceInput(
        "Reason for change", choices=tuple(fieldtypes.Choice(r, r, r) for r in CHANGE_REASONS)))
    setattr(form_class, REASON_TEXT_FIELD, fieldtypes.TextInput("Details"))
    return FormLayout(form_def, fields, tuple(sections), form_class)


#: version hash -> FormLayout, least recently used dropped beyond CACHE_SIZE.
CACHE_SIZE = 512
_cache = collections.OrderedDict()
_lock = threading.Lock()


def layout_for(form_def):
    """The cached FormLayout of a form version (built on first use)."""
    with _lock:
        layout = _cache.get(form_def.hash)
        if layout is not None:
            _cache.move_to_end(form_def.hash)
            return layout
    layout = _build(form_def)
    with _lock:
        _cache[form_def.hash] = layout
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return layout


def build_form_class(form_def):
    """The WTForms class of a form version (cached per version hash)."""
    return layout_for(form_def).form_class


def clear_cache():
    """Forget every built form (the benchmark uses this to time a cold build)."""
    with _lock:
        _cache.clear()
