"""Frozen in-memory study definitions, built only by the loader from files it has fully validated."""
import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value):
    """sha256 over the canonical JSON of ``value``: equal content, equal hash."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def code_values(schema):
    """A code-list field's values in order, as text (strings as written, other values as JSON, the
    way x-ecrf labels name them), or None when the field has no code list."""
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    if not isinstance(target, (dict, MappingProxyType)):
        return None
    if "enum" in target:
        values = list(target["enum"])
    elif "oneOf" in target and all(isinstance(o, (dict, MappingProxyType)) and "const" in o
                                   for o in target["oneOf"]):
        values = [o["const"] for o in target["oneOf"]]
    else:
        return None
    return [v if isinstance(v, str) else json.dumps(v) for v in values]


#: Keywords whose argument is data, not a schema: an "$anchor" in there declares nothing.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "x-ecrf", "required",
                            "dependentRequired"})


def ref_target(root, ref):
    """The schema a local ``$ref`` names in ``root``: ``#``, a JSON pointer (``#/$defs/yn``) or an
    ``$anchor`` name (``#yn``); None when it names nothing or leaves the file."""
    if ref == "#" or ref.startswith("#/"):
        target = root
        for token in ref[2:].split("/") if ref != "#" else ():
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target, Mapping) and token in target:
                target = target[token]
            elif isinstance(target, (list, tuple)) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                return None
        return target
    if ref.startswith("#") and len(ref) > 1:
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, Mapping):
                if node.get("$anchor") == ref[1:]:
                    return node
                stack.extend(value for key, value in node.items() if key not in _DATA_KEYWORDS)
            elif isinstance(node, (list, tuple)):
                stack.extend(node)
    return None


@dataclasses.dataclass(frozen=True)
class FieldDef:
    """One top-level property of a form: its name, title and JSON Schema."""

    name: str
    title: str
    schema: MappingProxyType
    required: bool

    @functools.cached_property
    def ecrf(self):
        """The field's ``x-ecrf`` block (empty when it has none); read on every field of every save."""
        return self.schema.get("x-ecrf", MappingProxyType({}))

    @property
    def kind(self):
        """A short description of the field's type, used by diffs and listings."""
        schema = self.schema
        if "enum" in schema or "oneOf" in schema:
            return "code list"
        if schema.get("type") == "array":
            items = schema.get("items", {})
            return "repeating group" if items.get("type") == "object" else "multiple choice"
        kind = schema.get("type", "any")
        if isinstance(kind, (list, tuple)):  # a frozen schema holds tuples, a plain one lists
            kind = "/".join(kind)
        fmt = schema.get("format")
        return f"{kind} ({fmt})" if fmt else kind


@dataclasses.dataclass(frozen=True)
class FormDef:
    """One form version: its id, its JSON Schema, and the hash that names the version."""

    id: str
    title: str
    schema: MappingProxyType
    hash: str
    fields: tuple

    @property
    def version(self):
        """The form version label stored with every record: ``<form>@<first 12 hash digits>``."""
        return f"{self.id}@{self.hash[:12]}"

    def field(self, name):
        return next((f for f in self.fields if f.name == name), None)


@dataclasses.dataclass(frozen=True)
class Visit:
    id: str
    label: str
    day: int
    window_before: int
    window_after: int
    forms: tuple
    arms: tuple = ()


@dataclasses.dataclass(frozen=True)
class Site:
    id: str
    name: str
    timezone: str | None = None


@dataclasses.dataclass(frozen=True)
class Study:
    """A whole validated study: study.json plus its forms, named by ``hash``."""

    id: str
    title: str
    visits: tuple
    forms: MappingProxyType          # form id -> FormDef
    log_forms: tuple
    sites: tuple
    arms: tuple
    document: MappingProxyType       # study.json as written
    hash: str

    def visit(self, visit_id):
        return next((v for v in self.visits if v.id == visit_id), None)

    @property
    def eligibility(self):
        return self.document.get("eligibility")

    @property
    def safety(self):
        return self.document.get("safety")

    def stored_definition(self):
        """The JSON stored for this version: study.json and every form schema."""
        return {"study": _thaw(self.document),
                "forms": {fid: _thaw(f.schema) for fid, f in self.forms.items()}}


def freeze(value):
    """Deep read-only view of parsed JSON (dicts become mappingproxies, lists tuples)."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def _thaw(value):
    if isinstance(value, MappingProxyType):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


thaw = _thaw
