"""Validate a form document against its form version: JSON Schema is the truth for validity.

Errors are (JSON pointer, message) pairs pointing at the field concerned: a missing required field
points at that field (``/packs``), an error in a repeating group at its row and field
(``/tubes/1/tube``). A draft may leave required fields empty; every other rule holds on every save.
A form accepts only the fields it declares, as if ``additionalProperties`` were false.
"""
import jsonschema

from ecrf.definitions.model import thaw


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


def _flatten(errors):
    for error in errors:
        if error.context and error.validator in ("anyOf", "oneOf"):
            # Report the closest alternative rather than "is not valid under any of the given schemas".
            best = jsonschema.exceptions.best_match(error.context)
            yield best
        else:
            yield error


def validate_document(form_def, document, complete):
    """Every problem in ``document`` as sorted, de-duplicated (pointer, message) pairs."""
    if not isinstance(document, dict):
        return [("", "the form data must be an object")]
    problems = []
    declared = form_def.schema.get("properties", {})
    for key in document:
        if key not in declared:
            problems.append((pointer([key]), f"{key!r} is not a field of this form"))
    known = {k: v for k, v in document.items() if k in declared}
    for error in _flatten(validator_for(form_def).iter_errors(known)):
        path = list(error.absolute_path)
        if error.validator == "required":
            if not complete:
                continue
            missing = [n for n in error.validator_value if isinstance(error.instance, dict)
                       and n not in error.instance]
            for name in missing:
                problems.append((pointer(path + [name]), "this field is required"))
            continue
        if error.validator == "dependentRequired":
            if not complete:
                continue
            for trigger, needed in error.validator_value.items():
                if isinstance(error.instance, dict) and trigger in error.instance:
                    for name in needed:
                        if name not in error.instance:
                            problems.append((pointer(path + [name]),
                                             f"this field is required when {trigger!r} is given"))
            continue
        if error.validator == "additionalProperties" and error.validator_value is False:
            extra = set(error.instance) - set(error.schema.get("properties", {}))
            for name in sorted(extra):
                problems.append((pointer(path + [name]), f"{name!r} is not a field of this form"))
            continue
        problems.append((pointer(path), _message(error)))
    return sorted(set(problems))


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
    return error.message
