"""show_if conditions: hidden fields are judged in property order (a field hidden early no longer
counts for later conditions). The compiled predicates behind them: tests/rules/test_predicate.py."""
from ecrf.rules.derive import derive, hidden_fields


def test_hidden_fields_are_judged_in_property_order(form_def):
    schema = {"type": "object", "properties": {
        "a": {"enum": ["Y", "N"]},
        "b": {"enum": ["Y", "N"], "x-ecrf": {"show_if": {"properties": {"a": {"const": "Y"}}, "required": ["a"]}}},
        "c": {"type": "string", "x-ecrf": {"show_if": {"properties": {"b": {"const": "Y"}}, "required": ["b"]}}},
        "d": {"type": "string", "x-ecrf": {"show_if": {"pattern": "^x", "type": "object"}}}}}
    form = form_def(schema)
    assert hidden_fields(form, {"a": "N", "b": "Y", "c": "text"}) == ["b", "c"]
    assert derive(form, {"a": "Y", "b": "Y", "c": "text", "d": "x"}) == {"a": "Y", "b": "Y", "c": "text", "d": "x"}
