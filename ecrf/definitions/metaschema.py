"""The meta-schemas of schemas/, in a local registry (no network), and their validators."""
import functools
import json

import jsonschema
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing import Resource

from ecrf.paths import resource

STUDY_SCHEMA = "study.schema.json"
FORM_SCHEMA = "form.schema.json"


@functools.cache
def _load(name):
    with open(resource("schemas") / name, encoding="utf-8") as fh:
        return json.load(fh)


@functools.cache
def registry():
    """The draft 2020-12 meta-schemas plus ours, each under its $id."""
    reg = SPECIFICATIONS
    for name in (STUDY_SCHEMA, FORM_SCHEMA):
        schema = _load(name)
        reg = reg.with_resource(schema["$id"], Resource.from_contents(schema))
    return reg


@functools.cache
def validator(name):
    """A validator for study.json (STUDY_SCHEMA) or a form file (FORM_SCHEMA), formats checked."""
    schema = _load(name)
    return jsonschema.Draft202012Validator(
        schema, registry=registry(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def pointer(path):
    """RFC 6901 JSON pointer of a jsonschema error path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path) or "/"


def iter_errors(name, document):
    """Yield ``(pointer, message)`` for every way ``document`` breaks the meta-schema ``name``."""
    errors = sorted(validator(name).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        yield pointer(error.absolute_path), _plain_message(error)


def _plain_message(error):
    if error.validator == "additionalProperties" and error.validator_value is False:
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "unknown key" + ("s " if len(extra) > 1 else " ") + ", ".join(repr(k) for k in extra)
    if error.validator == "pattern":
        return f"{error.instance!r} does not match the pattern {error.validator_value!r}"
    if error.validator == "enum":
        choices = ", ".join(repr(v) for v in error.validator_value)
        return f"{error.instance!r} is not one of {choices}"
    return error.message
