"""Validate a form document against its form version: JSON Schema is the truth for validity.

Errors are (JSON pointer, message) pairs pointing at the field concerned: a missing required field
points at that field (``/packs``), an error in a repeating group at its row and field
(``/tubes/1/tube``). A draft may leave required fields empty; every other rule holds on every save.
A form accepts only the fields it declares, as if ``additionalProperties`` were false (a row of a
repeating group too). Missing-data flags are checked here as well, and a flagged field counts as
answered for ``required``. Text no database can store (NUL, lone surrogates) and non-finite numbers
are refused at their field rather than failing in the database.
"""
import math
import re
from collections.abc import Mapping

import jsonschema

from ecrf.definitions.model import thaw
from ecrf.rules.predicate import compile_schema


def _escape(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(path):
    return "".join("/" + _escape(p) for p in path)


#: Compiled validators by form version hash: a version's schema never changes.
_VALIDATORS = {}


def validator_for(form_def):
    """A jsonschema validator for one form version, compiled once per version hash."""
    validator = _VALIDATORS.get(form_def.hash)
    if validator is None:
        validator = _VALIDATORS[form_def.hash] = jsonschema.Draft202012Validator(
            thaw(form_def.schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return validator


#: Compiled validity predicates by (form version hash, complete): jsonschema's answer, faster.
_PREDICATES = {}


def _valid_fast(form_def, document, complete):
    """True when ``document`` certainly has no error to report (a draft may lack required fields);
    False means "ask jsonschema", which then names every error. See ``ecrf.rules.predicate``."""
    key = (form_def.hash, complete)
    if key not in _PREDICATES:
        _PREDICATES[key] = compile_schema(
            thaw(form_def.schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            relax_required=not complete)
    predicate = _PREDICATES[key]
    return predicate is not None and predicate(document)


def _flatten(errors):
    for error in errors:
        if error.context and error.validator in ("anyOf", "oneOf"):
            # Report the closest alternative rather than "is not valid under any of the given schemas".
            best = jsonschema.exceptions.best_match(error.context)
            yield best
        else:
            yield error


def validate_document(form_def, document, complete, *, missing=None):
    """Every problem in ``document`` as sorted, de-duplicated (pointer, message) pairs.

    ``missing`` holds the record's missing-data flags ({"/field": {"flag", "reason"}}): each is
    checked (the field offers that flag, a reason is given, the field has no value), and a flagged
    field counts as answered for ``required`` (also when ``then`` or ``dependentRequired`` asks).
    """
    if not isinstance(document, dict):
        return [("", "the form data must be an object")]
    missing = missing or {}
    problems = list(_storable(document))
    declared = form_def.schema.get("properties", {})
    for key in document:
        if key not in declared:
            problems.append((pointer([key]), f"{key!r} is not a field of this form"))
    known = {k: v for k, v in document.items() if k in declared}
    problems.extend(_undeclared_in_rows(form_def, known))
    problems.extend(_flag_problems(form_def, known, missing))
    errors = () if _valid_fast(form_def, known, complete) else validator_for(form_def).iter_errors(known)
    for error in _flatten(errors):
        path = list(error.absolute_path)
        if error.validator == "required":
            if not complete:
                continue
            absent = [n for n in error.validator_value if isinstance(error.instance, dict)
                      and n not in error.instance]
            for name in absent:
                if pointer(path + [name]) not in missing:
                    problems.append((pointer(path + [name]), "this field is required"))
            continue
        if error.validator == "dependentRequired":
            if not complete:
                continue
            for trigger, needed in error.validator_value.items():
                if isinstance(error.instance, dict) and trigger in error.instance:
                    for name in needed:
                        if name not in error.instance and pointer(path + [name]) not in missing:
                            problems.append((pointer(path + [name]),
                                             f"this field is required when {trigger!r} is given"))
            continue
        if error.validator == "additionalProperties" and error.validator_value is False:
            extra = set(error.instance) - set(error.schema.get("properties", {}))
            for name in sorted(extra):
                problems.append((pointer(path + [name]), f"{name!r} is not a field of this form"))
            continue
        problems.append((pointer(path), _message(error)))
    problems.extend(_coding_problems(declared, known))
    return sorted(set(problems))


#: Reason of a missing-data flag: at most this many characters.
MAX_FLAG_REASON = 500
MISSING_FLAGS = ("not_done", "unknown", "not_applicable")


def _flag_problems(form_def, document, missing):
    """Problems with missing-data flags: only a field's own flags, with a reason, and no value."""
    if not isinstance(missing, dict):
        yield ("", "the missing-data flags must be an object")
        return
    for key, flag in missing.items():
        name = key[1:] if isinstance(key, str) and key.startswith("/") else None
        field = form_def.field(name) if name and "/" not in name else None
        where = key if isinstance(key, str) else ""
        if field is None:
            yield (where, "missing-data flags can only be set on a field of this form")
            continue
        offered = field.ecrf.get("missing") or ()
        if "calculate" in field.ecrf or not offered:
            yield (where, "this field cannot be marked as missing")
            continue
        if not isinstance(flag, dict) or set(flag) - {"flag", "reason"}:
            yield (where, 'a missing-data flag is {"flag": ..., "reason": ...}')
            continue
        if flag.get("flag") not in offered:
            names = ", ".join(f.replace("_", " ") for f in offered)
            yield (where, f"this field can only be marked {names}")
        reason = flag.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            yield (where, "give the reason the value is missing")
        elif len(reason) > MAX_FLAG_REASON:
            yield (where, f"the reason must have at most {MAX_FLAG_REASON} characters")
        if name in document:
            yield (where, "give a value or mark the field as missing, not both")


def _items_schema(form_def, field_schema):
    """The row schema of a repeating group (``items``, a local ``$ref`` followed), or None."""
    items = field_schema.get("items")
    for _ in range(20):
        if not isinstance(items, Mapping) or "$ref" not in items:
            break
        ref = items["$ref"]
        if not ref.startswith("#/"):
            return None
        target = form_def.schema
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            target = target.get(token) if isinstance(target, Mapping) else None
        items = target
    return items if isinstance(items, Mapping) else None


def _undeclared_in_rows(form_def, document):
    """A row of a repeating group also accepts only the fields it declares."""
    for name, value in document.items():
        field_schema = form_def.schema["properties"].get(name)
        if not isinstance(value, list) or not isinstance(field_schema, Mapping):
            continue
        items = _items_schema(form_def, field_schema)
        if items is None or "properties" not in items or "additionalProperties" in items \
                or "patternProperties" in items or "unevaluatedProperties" in items:
            continue
        for index, row in enumerate(value):
            if isinstance(row, dict):
                for key in row:
                    if key not in items["properties"]:
                        yield (pointer([name, index, key]), f"{key!r} is not a field of this group")


def unstorable(text):
    """Whether ``text`` holds characters no database can store (NUL, lone surrogates)."""
    return bool(_UNSTORABLE.search(text))


def _storable(document):
    """Text no database can hold (NUL, lone surrogates) and numbers JSON cannot (NaN, infinity)."""
    stack = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                yield (pointer(path), "contains characters that are not allowed")
        elif isinstance(value, float):
            if not math.isfinite(value):
                yield (pointer(path), "must be a finite number")
        elif isinstance(value, dict):
            for key, sub in value.items():
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    yield (pointer(path), "contains a name with characters that are not allowed")
                    continue
                stack.append(((*path, key), sub))
        elif isinstance(value, list):
            stack.extend(((*path, i), sub) for i, sub in enumerate(value))


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _message(error):
    v, value = error.validator, error.validator_value
    if v == "minimum":
        return f"must be at least {value}"
    if v == "maximum":
        return f"must be at most {value}"
    if v == "exclusiveMinimum":
        return f"must be more than {value}"
    if v == "exclusiveMaximum":
        return f"must be less than {value}"
    if v == "maxLength":
        return f"must have at most {value} characters"
    if v == "minLength":
        return f"must have at least {value} characters"
    if v in ("enum", "const"):
        return "is not one of the allowed choices"
    if v == "format":
        return f"is not a valid {value}"
    if v == "pattern":
        return "does not have the expected form"
    if v == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join({"integer": "a whole number", "number": "a number",
                                         "string": "text", "boolean": "yes or no",
                                         "array": "a list", "object": "a group of fields",
                                         "null": "empty"}.get(k, k) for k in kinds)
    if v == "minItems":
        return f"needs at least {value} {'entry' if value == 1 else 'entries'}"
    if v == "maxItems":
        return f"can have at most {value} {'entry' if value == 1 else 'entries'}"
    if v == "uniqueItems":
        return "has the same entry twice"
    if v == "multipleOf":
        return f"must be a multiple of {value}"
    if v == "minProperties" or v == "maxProperties":
        return "has the wrong number of answers"
    message = error.message
    # jsonschema's own messages quote the value, which may be long: keep the page readable.
    return message if len(message) <= 200 else f"is not valid ({v})"


def _coding_problems(declared, document):
    """An AE log coded to a CTCAE term (``aellt``) accepts only the grades that term defines."""
    if "aellt" not in declared or "aetoxgr" not in declared:
        return []
    from ecrf.coding.ae import grade_problem

    message = grade_problem(document)
    return [("/aetoxgr", message)] if message else []
