"""Apply a form's rules to a document on the server: hidden fields cleared, calculations computed,
soft checks evaluated. The browser only mirrors this; the saved document is what this returns."""
import functools

import jsonschema

from ecrf.definitions.model import thaw
from ecrf.rules.expression import parse


@functools.lru_cache(maxsize=2048)
def _expression(source):
    return parse(source)


#: show_if validators by field definition (kept with the field so a recycled id never matches).
_CONDITIONS = {}


def _condition(field_def):
    entry = _CONDITIONS.get(id(field_def))
    if entry is None or entry[0] is not field_def:
        validator = jsonschema.Draft202012Validator(thaw(field_def.ecrf["show_if"]))
        entry = _CONDITIONS[id(field_def)] = (field_def, validator)
    return entry[1]


def applies(field_def, data):
    """Whether a field applies to ``data`` (its ``x-ecrf.show_if`` condition holds, or it has none)."""
    if "show_if" not in field_def.ecrf:
        return True
    return _condition(field_def).is_valid(data)


def derive(form_def, data):
    """Return a copy of ``data`` with hidden fields removed and calculated fields (re)computed.

    Calculations run in property order after hidden fields are cleared, so a calculation never reads
    a value the user can no longer see; a calculation that gives no value removes the field.
    """
    result = dict(data)
    for field in form_def.fields:
        if not applies(field, result):
            result.pop(field.name, None)
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
    if schema.get("type") == "integer" and isinstance(value, (int, float)):
        return int(round(value))
    if schema.get("type") == "number" and isinstance(value, (int, float)):
        decimals = schema.get("x-ecrf", {}).get("decimals")
        return round(float(value), decimals) if decimals is not None else float(value)
    return value


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
