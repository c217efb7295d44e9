"""Compiled JSON Schema predicates answer exactly as jsonschema does (show_if conditions and the fast
"valid" answer of form validation); a draft's predicate ignores only the required fields jsonschema
would report as such."""
import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrf.rules.predicate import compile_schema

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER
NAMES = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 1.5, -2.5]),
                    st.sampled_from(["", "Y", "N", "1", "ab", "2024-03-15", "2024-02-30", "x1",
                                     "2024-03-15T10:00:00Z", "2024-03-15T10:00"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(NAMES, inner, max_size=3)),
                      max_leaves=6)


def _schemas(extended):
    leaves = [
        st.builds(lambda v: {"const": v}, VALUES),
        st.builds(lambda vs: {"enum": vs}, st.lists(VALUES, min_size=1, max_size=3)),
        st.builds(lambda t: {"type": t}, st.sampled_from(["string", "integer", "number", "boolean", "null",
                                                          "array", "object", ["integer", "string"]])),
        st.builds(lambda k, b: {k: b}, st.sampled_from(["minimum", "maximum", "exclusiveMinimum",
                                                        "exclusiveMaximum"]), st.integers(-2, 2)),
        st.builds(lambda ns: {"required": ns}, st.lists(NAMES, max_size=2, unique=True)),
        st.booleans(),
    ]
    if extended:
        leaves += [
            st.builds(lambda d: {"dependentRequired": d},
                      st.dictionaries(NAMES, st.lists(NAMES, max_size=2, unique=True), max_size=2)),
            st.builds(lambda k, n: {k: n}, st.sampled_from(["minLength", "maxLength", "minItems", "maxItems"]),
                      st.integers(0, 3)),
            st.builds(lambda p: {"pattern": p}, st.sampled_from(["^[A-Z]$", "1", "^$", "\\d"])),
            st.builds(lambda f: {"format": f}, st.sampled_from(["date", "date-time", "time", "email"])),
            st.builds(lambda u: {"uniqueItems": u}, st.booleans()),
            st.just({"title": "annotations only", "readOnly": True, "x-ecrf": {"unit": "mg"}}),
        ]

    def branches(inner):
        options = [
            st.builds(lambda props: {"properties": props}, st.dictionaries(NAMES, inner, max_size=2)),
            st.builds(lambda s: {"not": s}, inner),
            st.builds(lambda s: {"contains": s}, inner),
            st.builds(lambda k, ss: {k: ss}, st.sampled_from(["allOf", "anyOf", "oneOf"]),
                      st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda a, b: {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else a,
                      inner, inner),
        ]
        if extended:
            options += [
                st.builds(lambda s: {"items": s}, inner),
                st.builds(lambda i, t, e: {"if": i, **({"then": t} if t is not None else {}),
                                           **({"else": e} if e is not None else {})},
                          inner, st.none() | inner, st.none() | inner),
                st.builds(lambda t, e: {"then": t, "else": e}, inner, inner),  # no "if": no effect
            ]
        return st.one_of(*options)

    return st.recursive(st.one_of(*leaves), branches, max_leaves=8)


def _with_definitions(schema, definition, how):
    """``schema`` that also refers to ``definition`` through $defs by pointer or by anchor."""
    if how == "pointer":
        return {"$defs": {"d": definition}, "allOf": [schema, {"$ref": "#/$defs/d"}]}
    anchored = dict(definition, **{"$anchor": "d"}) if isinstance(definition, dict) else definition
    if not isinstance(anchored, dict):
        return {"$defs": {"d": definition}, "properties": {"a": {"$ref": "#/$defs/d"}}, "allOf": [schema]}
    return {"$defs": {"d": anchored}, "properties": {"a": {"$ref": "#d"}}, "allOf": [schema]}


REFERRING = st.builds(_with_definitions, _schemas(extended=True), _schemas(extended=True),
                      st.sampled_from(["pointer", "anchor"]))


@settings(max_examples=150, deadline=None)
@given(condition=_schemas(extended=False), instance=VALUES)
def test_conditions_agree_with_jsonschema(condition, instance):
    compiled = compile_schema(condition)
    assert compiled is not None
    assert compiled(instance) == jsonschema.Draft202012Validator(condition).is_valid(instance)


@settings(max_examples=300, deadline=None)
@given(schema=_schemas(extended=True) | REFERRING, instance=VALUES)
def test_validation_with_formats_agrees_with_jsonschema(schema, instance):
    compiled = compile_schema(schema, format_checker=FORMATS)
    assert compiled is not None
    expected = jsonschema.Draft202012Validator(schema, format_checker=FORMATS).is_valid(instance)
    assert compiled(instance) == expected
    # without a format checker, format is an annotation (as for show_if conditions)
    assert compile_schema(schema)(instance) == jsonschema.Draft202012Validator(schema).is_valid(instance)


@settings(max_examples=300, deadline=None)
@given(schema=_schemas(extended=True) | REFERRING, instance=VALUES)
def test_a_drafts_predicate_passes_only_what_has_no_error_but_required(schema, instance):
    """What validate_document relies on: when the relaxed predicate says yes, every error jsonschema
    would report is a "required" or "dependentRequired" one (a draft may leave required fields empty); and a document
    valid in full passes the relaxed predicate too."""
    relaxed = compile_schema(schema, format_checker=FORMATS, relax_required=True)
    errors = list(jsonschema.Draft202012Validator(schema, format_checker=FORMATS).iter_errors(instance))
    if relaxed(instance):
        assert {e.validator for e in errors} <= {"required", "dependentRequired"}
    if not errors:
        assert relaxed(instance)


def test_a_required_field_left_empty_fails_only_in_full():
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}},
              "allOf": [{"if": {"properties": {"a": {"const": 1}}, "required": ["a"]},
                         "then": {"required": ["b"]}}]}
    full, draft = compile_schema(schema), compile_schema(schema, relax_required=True)
    assert not full({}) and draft({})
    assert not full({"a": 1}) and draft({"a": 1}) and full({"a": 1, "b": 0})
    assert not draft({"a": "x"})
    # inside a test (not, anyOf, if) required is a condition, never relaxed
    assert not compile_schema({"not": {"required": ["a"]}}, relax_required=True)({"a": 1})


def test_local_references_are_followed():
    schema = {"$defs": {"yn": {"enum": ["Y", "N"]}, "n": {"$anchor": "num", "type": "number"}},
              "properties": {"a": {"$ref": "#/$defs/yn", "title": "A"}, "b": {"$ref": "#num"}}}
    compiled = compile_schema(schema)
    assert compiled({"a": "Y", "b": 2}) and not compiled({"a": "y"}) and not compiled({"b": "2"})


def test_other_keywords_are_left_to_jsonschema():
    for schema in ({"properties": {"a": {"$ref": "#/$defs/x"}}}, {"dependentRequired": {"a": "b"}},
                   {"$defs": {"x": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"}, {"$ref": "other.json#/x"},
                   {"$id": "https://example.org/s", "type": "object"}, {"$ref": "#nowhere"},
                   {"additionalProperties": False}, {"prefixItems": [True], "items": False},
                   {"contains": True, "minContains": 2}, {"pattern": "("}, {"type": "decimal"},
                   {"minimum": True}, {"multipleOf": 0.5}):
        assert compile_schema(schema, format_checker=FORMATS) is None, schema
