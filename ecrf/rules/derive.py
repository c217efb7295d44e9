"""Apply a form's rules to a document on the server: hidden fields cleared, calculations computed,
soft checks evaluated. The browser only mirrors this; the saved document is what this returns."""
import functools

import jsonschema

from ecrf.definitions.model import thaw
from ecrf.rules.expression import parse, round_half_away
from ecrf.rules.predicate import compile_schema


@functools.lru_cache(maxsize=2048)
def _expression(source):
    return parse(source)


#: show_if tests by field definition (kept with the field so a recycled id never matches).
_CONDITIONS = {}


def _condition(field_def):
    """The test of a field's show_if: a compiled predicate (``ecrf.rules.predicate``) for the
    keywords study files write, jsonschema itself for anything else. Both give jsonschema's answer."""
    entry = _CONDITIONS.get(id(field_def))
    if entry is None or entry[0] is not field_def:
        schema = thaw(field_def.ecrf["show_if"])
        test = compile_schema(schema) or jsonschema.Draft202012Validator(schema).is_valid
        entry = _CONDITIONS[id(field_def)] = (field_def, test)
    return entry[1]


def applies(field_def, data):
    """Whether a field applies to ``data`` (its ``x-ecrf.show_if`` condition holds, or it has none)."""
    if "show_if" not in field_def.ecrf:
        return True
    return _condition(field_def)(data)


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
