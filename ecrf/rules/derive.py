"""Apply a form's rules to a document on the server: hidden fields cleared, calculations computed,
soft checks evaluated. The browser only mirrors this; the saved document is what this returns."""
import functools

import jsonschema

from ecrf.definitions.model import thaw
from ecrf.rules.expression import parse, round_half_away


@functools.lru_cache(maxsize=2048)
def _expression(source):
    return parse(source)


#: show_if tests by field definition (kept with the field so a recycled id never matches).
_CONDITIONS = {}


def _condition(field_def):
    """The test of a field's show_if: a compiled predicate for the common keywords (the conditions
    study files write), jsonschema itself for anything else. Both give jsonschema's answer."""
    entry = _CONDITIONS.get(id(field_def))
    if entry is None or entry[0] is not field_def:
        schema = thaw(field_def.ecrf["show_if"])
        test = compile_condition(schema) or jsonschema.Draft202012Validator(schema).is_valid
        entry = _CONDITIONS[id(field_def)] = (field_def, test)
    return entry[1]


def applies(field_def, data):
    """Whether a field applies to ``data`` (its ``x-ecrf.show_if`` condition holds, or it has none)."""
    if "show_if" not in field_def.ecrf:
        return True
    return _condition(field_def)(data)


# --- a fast path for the conditions study files write ----------------------------------------------

#: Keywords that never change whether an instance is valid.
_ANNOTATIONS = frozenset({"title", "description", "$comment", "default", "examples", "readOnly",
                          "writeOnly", "deprecated", "format", "x-ecrf", "$schema"})
_NUMBER_TESTS = {"minimum": lambda v, b: v >= b, "maximum": lambda v, b: v <= b,
                 "exclusiveMinimum": lambda v, b: v > b, "exclusiveMaximum": lambda v, b: v < b}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(a, b):
    """JSON equality as jsonschema's const and enum see it (``1 == 1.0``, ``true != 1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if a != b:
        return False
    return type(a) is type(b) or (_is_number(a) and _is_number(b))


_TYPES = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None, "number": _is_number,
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or v.is_integer()),
}


def compile_condition(schema):
    """A predicate equivalent to ``Draft202012Validator(schema).is_valid``, or None when ``schema``
    uses a keyword outside properties, required, const, enum, type, the number bounds, contains,
    not, allOf, anyOf and oneOf (annotations aside)."""
    if schema is True or schema is False:
        return lambda value, result=schema: result
    if not isinstance(schema, dict):
        return None
    tests = []
    for key, arg in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "properties":
            if not isinstance(arg, dict):
                return None
            subs = {name: compile_condition(sub) for name, sub in arg.items()}
            if any(test is None for test in subs.values()):
                return None
            tests.append(lambda v, subs=subs: not isinstance(v, dict) or all(
                test(v[name]) for name, test in subs.items() if name in v))
        elif key == "required" and isinstance(arg, list):
            tests.append(lambda v, names=tuple(arg): not isinstance(v, dict) or all(n in v for n in names))
        elif key == "const":
            tests.append(lambda v, const=arg: _equal(v, const))
        elif key == "enum" and isinstance(arg, list):
            tests.append(lambda v, values=tuple(arg): any(_equal(v, x) for x in values))
        elif key == "type" and isinstance(arg, (str, list)):
            names = [arg] if isinstance(arg, str) else arg
            if not all(n in _TYPES for n in names):
                return None
            tests.append(lambda v, checks=tuple(_TYPES[n] for n in names): any(c(v) for c in checks))
        elif key in _NUMBER_TESTS and _is_number(arg):
            tests.append(lambda v, bound=arg, test=_NUMBER_TESTS[key]: not _is_number(v) or test(v, bound))
        elif key == "contains":
            sub = compile_condition(arg)
            if sub is None:
                return None
            tests.append(lambda v, sub=sub: not isinstance(v, list) or any(sub(x) for x in v))
        elif key == "not":
            sub = compile_condition(arg)
            if sub is None:
                return None
            tests.append(lambda v, sub=sub: not sub(v))
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(arg, list) and arg:
            subs = [compile_condition(x) for x in arg]
            if any(test is None for test in subs):
                return None
            if key == "allOf":
                tests.append(lambda v, subs=tuple(subs): all(t(v) for t in subs))
            elif key == "anyOf":
                tests.append(lambda v, subs=tuple(subs): any(t(v) for t in subs))
            else:
                tests.append(lambda v, subs=tuple(subs): sum(1 for t in subs if t(v)) == 1)
        else:
            return None
    return lambda value, tests=tuple(tests): all(test(value) for test in tests)


def _inputs(form_def, data):
    """``data`` without calculated fields: those are computed, never taken from a submission."""
    calculated = {f.name for f in form_def.fields if "calculate" in f.ecrf}
    return {k: v for k, v in data.items() if k not in calculated}


def hidden_fields(form_def, data):
    """Names of the fields that do not apply to ``data``, judged in property order: a field hidden
    early no longer counts for the conditions of the fields after it (as ``derive`` clears it)."""
    result = _inputs(form_def, data)
    hidden = []
    for field in form_def.fields:
        if not applies(field, result):
            hidden.append(field.name)
            result.pop(field.name, None)
    return hidden


def derive(form_def, data, *, hidden=None):
    """Return a copy of ``data`` with hidden fields removed and calculated fields (re)computed.

    Calculations run in property order after hidden fields are cleared, so a calculation never reads
    a value the user can no longer see; a calculation that gives no value removes the field.
    ``hidden`` is ``hidden_fields(form_def, data)`` when the caller has it already.
    """
    result = _inputs(form_def, data)
    for name in hidden_fields(form_def, result) if hidden is None else hidden:
        result.pop(name, None)
    for field in form_def.fields:
        source = field.ecrf.get("calculate")
        if source is None:
            continue
        value = _expression(source).evaluate(result)
        if value is None or not applies(field, result):
            result.pop(field.name, None)
        else:
            result[field.name] = _as_schema_type(field.schema, value)
    return result


def _as_schema_type(schema, value):
    if isinstance(value, bool):
        return value
    # The same rounding as the expression language's round() and the browser's preview.
    if schema.get("type") == "integer" and isinstance(value, (int, float)):
        return round_half_away(value, 0)
    if schema.get("type") == "number" and isinstance(value, (int, float)):
        decimals = schema.get("x-ecrf", {}).get("decimals")
        return float(round_half_away(value, decimals)) if decimals is not None else float(value)
    return value


def applicable_flags(form_def, data, missing, *, hidden=None):
    """The missing-data flags of ``missing`` that still apply to ``data``: a flag on a field that is
    hidden, calculated, unknown or has a value is dropped (a value supersedes a flag). ``hidden`` is
    ``hidden_fields(form_def, data)`` when the caller has it already."""
    hidden = set(hidden_fields(form_def, data) if hidden is None else hidden)
    kept = {}
    for pointer, flag in (missing or {}).items():
        name = pointer[1:] if isinstance(pointer, str) and pointer.startswith("/") else None
        field = form_def.field(name) if name else None
        if field is None or name in hidden or "calculate" in field.ecrf or name in data:
            continue
        kept[pointer] = flag
    return kept


def soft_checks(form_def, data):
    """(pointer, message) for each ``x-ecrf.warnings`` check that fails on a field that has a value."""
    found = []
    for field in form_def.fields:
        if field.name not in data:
            continue
        for warning in field.ecrf.get("warnings", ()):
            if _expression(warning["expect"]).evaluate(data) is False:
                found.append((f"/{field.name}", warning["message"]))
    return found
