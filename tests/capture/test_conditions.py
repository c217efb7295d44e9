"""show_if conditions: the compiled fast path answers exactly as jsonschema does, and hidden fields
are judged in property order (a field hidden early no longer counts for later conditions)."""
import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrf.rules.derive import compile_condition, derive, hidden_fields

NAMES = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 1.5, -2.5]),
                    st.sampled_from(["", "Y", "N", "1"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(NAMES, inner, max_size=3)),
                      max_leaves=6)


def _conditions():
    leaf = st.one_of(
        st.builds(lambda v: {"const": v}, VALUES),
        st.builds(lambda vs: {"enum": vs}, st.lists(VALUES, min_size=1, max_size=3)),
        st.builds(lambda t: {"type": t}, st.sampled_from(["string", "integer", "number", "boolean", "null",
                                                          "array", "object", ["integer", "string"]])),
        st.builds(lambda k, b: {k: b}, st.sampled_from(["minimum", "maximum", "exclusiveMinimum",
                                                        "exclusiveMaximum"]), st.integers(-2, 2)),
        st.builds(lambda ns: {"required": ns}, st.lists(NAMES, max_size=2, unique=True)),
        st.booleans(),
    )
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda props: {"properties": props}, st.dictionaries(NAMES, inner, max_size=2)),
        st.builds(lambda s: {"not": s}, inner),
        st.builds(lambda s: {"contains": s}, inner),
        st.builds(lambda k, ss: {k: ss}, st.sampled_from(["allOf", "anyOf", "oneOf"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda a, b: {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else a, inner, inner),
    ), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(condition=_conditions(), instance=VALUES)
def test_compiled_conditions_agree_with_jsonschema(condition, instance):
    compiled = compile_condition(condition)
    assert compiled is not None
    assert compiled(instance) == jsonschema.Draft202012Validator(condition).is_valid(instance)


def test_conditions_with_other_keywords_are_left_to_jsonschema():
    assert compile_condition({"properties": {"a": {"$ref": "#/$defs/x"}}}) is None
    assert compile_condition({"if": {"required": ["a"]}, "then": {"required": ["b"]}}) is None
    assert compile_condition({"pattern": "^a"}) is None


def test_hidden_fields_are_judged_in_property_order(form_def):
    schema = {"type": "object", "properties": {
        "a": {"enum": ["Y", "N"]},
        "b": {"enum": ["Y", "N"], "x-ecrf": {"show_if": {"properties": {"a": {"const": "Y"}}, "required": ["a"]}}},
        "c": {"type": "string", "x-ecrf": {"show_if": {"properties": {"b": {"const": "Y"}}, "required": ["b"]}}},
        "d": {"type": "string", "x-ecrf": {"show_if": {"pattern": "^x", "type": "object"}}}}}
    form = form_def(schema)
    assert hidden_fields(form, {"a": "N", "b": "Y", "c": "text"}) == ["b", "c"]
    assert derive(form, {"a": "Y", "b": "Y", "c": "text", "d": "x"}) == {"a": "Y", "b": "Y", "c": "text", "d": "x"}
