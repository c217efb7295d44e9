"""The REDCap logic translator: branching logic into JSON Schema conditions, calculations into
ecrf expressions, and a clear reason for whatever it cannot translate."""
import pytest

from ecrf.exchange.redcap_logic import Untranslatable, parse, to_condition, to_expression
from ecrf.rules.expression import parse as parse_expression
from ecrf.rules.predicate import compile_schema

KINDS = {"sex": "choice", "age": "integer", "wt": "number", "cb": "checkbox", "note": "text",
         "dob": "date", "grade": ("choice", ("1", "2", "3", "4")), "arm": ("choice", ("A", "B"))}


def holds(logic, data):
    """Whether the translated condition holds for ``data`` (checked by ecrf's own predicate)."""
    return compile_schema(to_condition(parse(logic), KINDS))(data)


@pytest.mark.parametrize(("logic", "data", "expected"), [
    ("[sex] = '1'", {"sex": "1"}, True),
    ("[sex] = \"1\"", {"sex": "0"}, False),
    ("[sex] = 1", {"sex": "1"}, True),          # a number compared with a code means the code
    ("[sex] = '1'", {}, False),
    ("[sex] <> '1'", {}, True),                 # REDCap: an empty field is not '1'
    ("[sex] != '1'", {"sex": "1"}, False),
    ("[note] = ''", {}, True),
    ("[note] <> ''", {"note": "x"}, True),
    ("[note] <> ''", {}, False),
    ("[age] >= 18", {"age": 18}, True),
    ("[age] > '18'", {"age": 18}, False),
    ("[age] < 0", {}, False),                   # an ordering with an empty field is false
    ("18 <= [age]", {"age": 30}, True),         # a literal on the left is turned round
    ("[wt] <= 2.5", {"wt": 2.5}, True),
    ("[cb(2)] = '1'", {"cb": ["1", "2"]}, True),
    ("[cb(2)] = '1'", {"cb": ["1"]}, False),
    ("[cb(ABC)] = '0'", {"cb": ["ABC"]}, False),
    ("[cb(ABC)] = '0'", {}, True),
    ("[sex] = '0' and [age] > 20 and [cb(1)] = '1'", {"sex": "0", "age": 21, "cb": ["1"]}, True),
    ("([sex] = '2' and [age] = 0) or [cb(2)] = '1'", {"cb": ["2"]}, True),
    ("([sex] = '2' and [age] = 0) or [cb(2)] = '1'", {"sex": "2", "age": 1}, False),
    ("[sex] = '1' AND [age] > 1", {"sex": "1", "age": 2}, True),
    ("[grade] >= 3", {"grade": "3"}, True),     # an ordering on numeric codes: the codes it allows
    ("[grade] >= 3", {"grade": "2"}, False),
    ("[grade] < '2'", {"grade": "1"}, True),
    ("[grade] < 2", {}, False),
])
def test_branching_logic_means_what_it_means_in_redcap(logic, data, expected):
    assert holds(logic, data) is expected


def test_nested_and_or_is_flattened():
    condition = to_condition(parse("[sex] = '1' and [age] > 1 and [wt] > 2"), KINDS)
    assert list(condition) == ["allOf"] and len(condition["allOf"]) == 3


@pytest.mark.parametrize(("logic", "reason"), [
    ("[dob] > '2024-01-01'", "orders numbers only"),
    ("[other_form_field] = '1'", "is not a field of this instrument"),
    ("[cb] = '1'", "name one of its codes"),
    ("[sex(1)] = '1'", "not a checkbox"),
    ("[cb(1)] = '2'", "compared with '1' or '0'"),
    ("[event_1_arm_1][sex] = '1'", "another event"),
    ("[user-role] = '1'", "smart variables"),
    ("datediff([dob], 'today', 'y') > 18", "function datediff()"),
    ("[age] = 'abc'", "is a number but is compared with 'abc'"),
    ("[sex] = '1' and", "ends too early"),
    ("[sex] = '1' ; drop", "unexpected character ';'"),
    ("", "is empty"),
    ("[age] + 1 > 3", "comparisons of a field with a value"),
])
def test_what_cannot_be_translated_says_why(logic, reason):
    with pytest.raises(Untranslatable, match=None) as exc:
        to_condition(parse(logic), KINDS)
    assert reason in str(exc.value)


@pytest.mark.parametrize(("calc", "expected"), [
    ("[age] + [wt]", "(age + wt)"),
    ("round(([wt]*10000)/(([age])^(2)),1)", "round(((wt * 10000) / ((age) * (age))), 1)"),
    ("([wt])^3", "((wt) * (wt) * (wt))"),
    ("sum([age], [wt])", "sum(age, wt)"),
    ("mean([age],[wt])/2", "(mean(age, wt) / 2)"),
    ("if([sex] = 1, [wt], 0)", "if((sex == '1'), wt, 0)"),
    ("datediff([dob], [note], 'd', 'ymd')", "abs(days_between(dob, note))"),
    ("-[age] * 2", "(-(age) * 2)"),
    ("3+4", "(3 + 4)"),
])
def test_calculations_become_ecrf_expressions(calc, expected):
    text = to_expression(parse(calc), KINDS)
    assert text == expected
    parse_expression(text)  # and ecrf's parser accepts it


def test_a_translated_calculation_computes_what_redcap_would():
    expression = parse_expression(to_expression(parse("round(([wt]*10000)/(([age])^(2)),1)"), KINDS))
    assert expression.evaluate({"wt": 70, "age": 175}) == 22.9


@pytest.mark.parametrize(("calc", "reason"), [
    ("sqrt([wt])", "function sqrt()"),
    ("[wt]^0.5", "powers 2, 3 and 4"),
    ("datediff([dob], 'today', 'y')", "datediff(..., 'd')"),
    ("[cb(1)] + 1", "checkbox codes"),
    ("[elsewhere] * 2", "not a field of this instrument"),
])
def test_calculations_that_cannot_be_translated_say_why(calc, reason):
    with pytest.raises(Untranslatable) as exc:
        to_expression(parse(calc), KINDS)
    assert reason in str(exc.value)


def test_an_ordering_on_codes_that_are_not_numbers_is_untranslatable_not_wrong():
    with pytest.raises(Untranslatable, match="the codes are not all numbers"):
        to_condition(parse("[arm] > 1"), KINDS)
    assert to_condition(parse("[grade] > 2"), KINDS) == {"properties": {"grade": {"enum": ["3", "4"]}},
                                                          "required": ["grade"]}
