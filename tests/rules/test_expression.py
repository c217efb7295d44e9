"""The expression language of calculations and soft checks (ecrf.rules.expression)."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrf.rules import Expression, ExpressionError, parse
from ecrf.rules.expression import FUNCTIONS, MAX_DEPTH, MAX_LENGTH, MAX_TREE_DEPTH


def ev(source, data=None):
    return parse(source).evaluate(data or {})


def error_of(source):
    with pytest.raises(ExpressionError) as info:
        parse(source)
    return info.value


# --- precedence and associativity -----------------------------------------------------------------

@pytest.mark.parametrize("source,expected", [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("2 * 3 + 1", 7),
    ("10 - 4 - 3", 3),               # left to right
    ("10 - (4 - 3)", 9),
    ("8 / 4 / 2", 1.0),
    ("8 / (4 / 2)", 4.0),
    ("2 * 6 / 3", 4.0),
    ("-2 * 3", -6),
    ("2 * -3", -6),
    ("- -2", 2),
    ("-(1 + 2)", -3),
    ("1 - -1", 2),
    ("1 + 2 == 3", True),            # arithmetic before comparison
    ("2 * 3 > 5", True),
    ("not 1 == 2", True),            # comparison before not
    ("not true and false", False),   # not before and
    ("not (true and false)", True),
    ("true or false and false", True),   # and before or
    ("(true or false) and false", False),
    ("false and false or true", True),
    ("1 < 2 and 2 < 3", True),
    ("not not true", True),
])
def test_precedence(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


def test_tree_shape_follows_precedence():
    assert parse("1 + 2 * 3").tree == ("arith", "+", ("lit", 1), ("arith", "*", ("lit", 2), ("lit", 3)))
    assert parse("a - b - c").tree == (
        "arith", "-", ("arith", "-", ("name", ("a",)), ("name", ("b",))), ("name", ("c",)))
    assert parse("not a == 1 or b").tree == (
        "or", ("not", ("cmp", "==", ("name", ("a",)), ("lit", 1))), ("name", ("b",)))
    assert parse("-x").tree == ("neg", ("name", ("x",)))
    assert parse("round(x, 1)").tree == ("call", "round", (("name", ("x",)), ("lit", 1)))


def test_the_tree_is_plain_json():
    tree = parse("if(a.b > 1 and not c, round(sum(d.e) / 2, 1), coalesce(f, 'x', null, true))").tree
    assert json.loads(json.dumps(tree)) == json.loads(json.dumps(list(tree)))


def test_comparisons_do_not_chain():
    error = error_of("1 < 2 < 3")
    assert "unexpected '<'" in str(error) and error.position == 6


# --- literals, names ------------------------------------------------------------------------------

@pytest.mark.parametrize("source,expected", [
    ("42", 42), ("007", 7), ("1.5", 1.5), ("1.5e2", 150.0), ("2E-1", 0.2),
    ("'text'", "text"), ('"text"', "text"), (r"'it\'s'", "it's"), (r'"say \"hi\""', 'say "hi"'),
    (r"'back\\slash'", "back\\slash"), ("''", ""),
    ("true", True), ("false", False), ("null", None),
])
def test_literals(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


def test_names_read_the_document():
    data = {"sbp": 120, "dm": {"sex": "F"}, "empty": None}
    assert ev("sbp", data) == 120
    assert ev("dm.sex", data) == "F"
    assert ev("empty", data) is None
    assert ev("missing", data) is None
    assert ev("sbp.deeper", data) is None
    assert ev("dm.missing.deeper", data) is None


def test_names_lists_each_field_path_once_in_order():
    assert parse("b + a * b").names == [("b",), ("a",)]
    assert parse("sum(tubes.volume) / count(tubes.volume) + dose").names == [("tubes", "volume"), ("dose",)]
    assert parse("if(x, y, z)").names == [("x",), ("y",), ("z",)]
    assert parse("not a and -b or c == d").names == [("a",), ("b",), ("c",), ("d",)]
    assert parse("1 + 'a' + true").names == []


def test_function_names_are_field_names_without_parentheses():
    assert ev("sum + 1", {"sum": 2}) == 3
    assert parse("max").names == [("max",)]


def test_expression_is_frozen_and_keeps_its_source():
    expr = parse(" a + 1 ")
    assert isinstance(expr, Expression) and expr.source == " a + 1 "
    with pytest.raises(AttributeError):
        expr.source = "b"


# --- arithmetic -----------------------------------------------------------------------------------

@pytest.mark.parametrize("source,expected", [
    ("7 / 2", 3.5), ("6 / 3", 2.0), ("0.1 + 0.2 > 0.3", True), ("3 * 1.5", 4.5),
    ("weight / (height / 100 * height / 100)", 80 / (1.8 * 1.8)),
])
def test_arithmetic(source, expected):
    assert ev(source, {"weight": 80, "height": 180}) == pytest.approx(expected)


@pytest.mark.parametrize("source", [
    "1 / 0", "1 / zero", "0 / 0",                         # division by zero: no value
    "'a' + 1", "'a' + 'b'", "'a' * 2",                    # no string arithmetic or concatenation
    "true + 1", "false * 3", "-true", "-'a'",             # booleans and strings are not numbers
    "dm + 1",                                             # nor are objects
])
def test_impossible_arithmetic_gives_no_value(source):
    assert ev(source, {"zero": 0, "dm": {"sex": "F"}}) is None


# --- null rules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("source,expected", [
    ("x + 1", None), ("1 - x", None), ("x * 0", None), ("x / 2", None), ("-x", None),
    ("x > 1", None), ("x <= 1", None), ("x < 'a'", None),
    ("x == null", True), ("x != null", False), ("null == null", True), ("x == 1", False),
    ("x != 1", True), ("1 == null", False),
    ("not x", None),
    ("x and true", None), ("x and false", False), ("false and x", False),
    ("x or false", None), ("x or true", True), ("true or x", True),
    ("(x > 1) or (2 > 1)", True), ("(x > 1) and (2 < 1)", False),
])
def test_null_propagation(source, expected):
    assert ev(source, {"x": None}) is expected


def test_missing_and_null_fields_behave_alike():
    for data in ({}, {"x": None}):
        assert ev("x + 1", data) is None
        assert ev("x == null", data) is True


def test_and_or_short_circuit():
    # the right-hand side would be a type error, which makes the whole expression null
    assert ev("true or 'a' < 1") is True
    assert ev("false and 'a' < 1") is False
    assert ev("true and 'a' < 1") is None


def test_and_or_not_on_values_that_are_not_booleans():
    assert ev("1 and 'x'") is True
    assert ev("0 or ''") is False
    assert ev("not 5") is False


# --- comparisons ----------------------------------------------------------------------------------

@pytest.mark.parametrize("source,expected", [
    ("1 == 1.0", True), ("2 != 3", True), ("2 >= 2", True), ("2 > 2", False), ("1.5 <= 2", True),
    ("'a' < 'b'", True), ("'abc' == 'abc'", True), ("'a' == 'A'", False),
    ("'2024-01-31' < '2024-02-01'", True),        # ISO dates order as text
    ("1 == '1'", False), ("'1' != 1", True),      # equality across types is simply false
    ("true == true", True), ("true == 1", False), ("false == 0", False), ("true != 1", True),
    ("1 < '2'", None), ("true < 2", None),        # ordering across types gives no value
])
def test_comparisons(source, expected):
    assert ev(source) is expected


# --- repeating groups and aggregates --------------------------------------------------------------

TUBES = {"tubes": [{"volume": 1.5, "kind": "EDTA"}, {"volume": None, "kind": "serum"},
                   {"volume": 2, "kind": "EDTA"}, {"kind": "citrate"}],
         "empty": [], "extra": 4}


@pytest.mark.parametrize("source,expected", [
    ("sum(tubes.volume)", 3.5),
    ("count(tubes.volume)", 2),
    ("count(tubes.kind)", 4),
    ("mean(tubes.volume)", 1.75),
    ("min(tubes.volume)", 1.5),
    ("max(tubes.volume)", 2),
    ("min(tubes.kind)", "EDTA"),
    ("max(tubes.kind)", "serum"),
    ("sum(tubes.volume, extra)", 7.5),           # arguments are flattened together
    ("sum(extra, 1, null)", 5),
    ("count(extra, null, tubes.volume)", 3),
    ("mean(1, 2, null)", 1.5),
    ("sum(empty.volume)", None),                 # nothing to add up: no value
    ("mean(empty.volume)", None),
    ("min(empty.volume)", None),
    ("max(missing.volume)", None),
    ("count(empty.volume)", 0),
    ("count(missing.volume)", 0),
    ("count(null)", 0),
    ("sum(tubes.kind)", None),                   # text is not summed
    ("mean(true, 1)", None),                     # nor are booleans
    ("max(tubes.volume, tubes.kind)", None),     # numbers and text do not order together
])
def test_aggregates(source, expected):
    result = ev(source, TUBES)
    assert result == expected and type(result) is type(expected)


def test_a_group_column_is_a_list_with_one_value_per_row():
    assert ev("tubes.volume", TUBES) == [1.5, None, 2, None]
    assert ev("empty.volume", TUBES) == []
    assert ev("missing.volume", TUBES) is None


def test_a_group_column_is_not_a_number():
    assert ev("tubes.volume + 1", TUBES) is None
    assert ev("tubes.volume > 1", TUBES) is None


def test_rows_that_are_not_objects_give_null():
    assert ev("rows.x", {"rows": [{"x": 1}, 5, None, "a"]}) == [1, None, None, None]
    assert ev("sum(rows.x)", {"rows": [{"x": 1}, 5, None, "a"]}) == 1


def test_groups_within_groups():
    data = {"visits": [{"tubes": [{"volume": 1}, {"volume": 2}]}, {"tubes": [{"volume": 3}]}, {}]}
    assert ev("visits.tubes.volume", data) == [[1, 2], [3], None]
    assert ev("sum(visits.tubes.volume)", data) == 6
    assert ev("count(visits.tubes.volume)", data) == 3


# --- functions ------------------------------------------------------------------------------------

def test_every_function_is_tested():
    assert set(FUNCTIONS) == {"sum", "mean", "count", "min", "max", "round", "abs", "if", "coalesce",
                              "years_between", "days_between"}


@pytest.mark.parametrize("source,expected", [
    ("round(2.5)", 3), ("round(3.5)", 4), ("round(-2.5)", -3), ("round(2.4)", 2),   # half away from 0
    ("round(0.125, 2)", 0.13), ("round(2.675, 2)", 2.68), ("round(1.005, 2)", 1.01),
    ("round(22.857142, 1)", 22.9), ("round(7)", 7), ("round(7, 2)", 7.0),
    ("round(1250, -2)", 1300), ("round(1249, -2)", 1200),
    ("round(null)", None), ("round(2.5, null)", None), ("round('a')", None), ("round(true)", None),
])
def test_round(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("source,expected", [
    ("abs(-3)", 3), ("abs(2.5)", 2.5), ("abs(0)", 0), ("abs(null)", None), ("abs('x')", None),
    ("abs(true)", None),
])
def test_abs(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("source,expected", [
    ("if(true, 1, 2)", 1), ("if(false, 1, 2)", 2), ("if(null, 1, 2)", 2),
    ("if(1, 'yes', 'no')", "no"),                 # only true itself chooses the first branch
    ("if(x > 1, 'high', 'low')", "high"), ("if(missing > 1, 'high', 'low')", "low"),
    ("if(true, 1, 'a' + 1)", 1),                  # the branch not taken is not evaluated
    ("if(false, 'a' < 1, 2)", 2),
    ("if(true, null, 2)", None),
])
def test_if(source, expected):
    assert ev(source, {"x": 5}) == expected


@pytest.mark.parametrize("source,expected", [
    ("coalesce(null, null, 3)", 3), ("coalesce(x, 0)", 0), ("coalesce(y, 0)", 7),
    ("coalesce(null)", None), ("coalesce(false, true)", False), ("coalesce('', 'x')", ""),
])
def test_coalesce(source, expected):
    assert ev(source, {"y": 7}) == expected


@pytest.mark.parametrize("source,expected", [
    ("min(3, 1, 2)", 1), ("max(3, 1, 2)", 3), ("min(3, null)", 3), ("max(null, null)", None),
    ("max('2024-01-05', '2023-12-31')", "2024-01-05"),
])
def test_min_max(source, expected):
    assert ev(source) == expected


@pytest.mark.parametrize("consent,age", [
    ("2020-06-14", 39),   # the day before the 40th birthday
    ("2020-06-15", 40),   # the birthday
    ("2020-06-16", 40),
    ("2021-06-14", 40),
    ("1980-06-15", 0),
])
def test_age_at_consent_across_a_birthday(consent, age):
    data = {"brthdat": "1980-06-15", "icdat": consent}
    assert ev("years_between(brthdat, icdat)", data) == age


@pytest.mark.parametrize("birth,on,age", [
    ("2000-02-29", "2018-02-28", 17),   # a leap-day birthday is reached on 1 March in common years
    ("2000-02-29", "2018-03-01", 18),
    ("2000-02-29", "2020-02-29", 20),
    ("2000-12-31", "2001-01-01", 0),
    ("2000-01-01", "1999-12-31", -1),    # the other way round counts backwards
])
def test_years_between(birth, on, age):
    assert ev("years_between(a, b)", {"a": birth, "b": on}) == age


@pytest.mark.parametrize("a,b,days", [
    ("2024-02-28", "2024-03-01", 2),     # a leap year
    ("2023-02-28", "2023-03-01", 1),
    ("2024-03-01", "2024-02-28", -2),
    ("2024-01-01", "2024-01-01", 0),
    ("2024-01-01T23:30:00Z", "2024-01-02T00:10:00Z", 1),   # date-times count by their date part
    ("2024-01", "2024-02-01", None),     # a partial date gives no result rather than a guess
    ("UNK-01-01", "2024-02-01", None),
    ("2024-02-30", "2024-03-01", None),  # no such day
    (None, "2024-03-01", None),
    (20240101, "2024-03-01", None),
])
def test_days_between(a, b, days):
    assert ev("days_between(a, b)", {"a": a, "b": b}) == days


def test_date_functions_on_literals():
    assert ev("days_between('2024-01-01', '2024-12-31')") == 365
    assert ev("years_between('1980-06-15', '2020-06-15') >= 18") is True
    assert ev("years_between(null, '2020-06-15')") is None


@pytest.mark.parametrize("source,message", [
    ("round()", "round() takes 1 to 2 arguments"),
    ("round(1, 2, 3)", "round() takes 1 to 2 arguments"),
    ("abs(1, 2)", "abs() takes exactly 1 argument"),
    ("if(true, 1)", "if() takes exactly 3 arguments"),
    ("sum()", "sum() takes at least 1 argument"),
    ("count()", "count() takes at least 1 argument"),
    ("years_between('2020-01-01')", "years_between() takes exactly 2 arguments"),
    ("days_between()", "days_between() takes exactly 2 arguments"),
])
def test_arity(source, message):
    error = error_of(source)
    assert message in str(error)
    assert error.position == 0 and "(at character 1)" in str(error)


# --- errors with positions ------------------------------------------------------------------------

@pytest.mark.parametrize("source,position,gist", [
    ("1 +", 3, "unexpected 'end of expression'"),
    ("(1 + 2", 6, "expected ')' but found 'the end'"),
    ("1 2", 2, "unexpected '2'"),
    ("a ? b", 2, "unexpected character '?'"),
    ("sbp => 50", 4, "unexpected character '='"),
    ("sum(1,)", 6, "unexpected ')'"),
    ("and 1", 0, "unexpected 'and'"),
    ("a.1", 2, "expected 'name' but found '1'"),
    ("a.", 2, "expected 'name' but found 'the end'"),
    ("'unterminated", 0, "unexpected character \"'\""),
    ("1 = 1", 2, "unexpected character '='"),
    ("x % 2", 2, "unexpected character '%'"),
    ("x ** 2", 3, "unexpected '*'"),
    (")", 0, "unexpected ')'"),
    ("f(1)", 0, "unknown function 'f'"),
    ("round(x, 1) round(y)", 12, "unexpected 'round'"),
])
def test_errors_say_where(source, position, gist):
    error = error_of(source)
    assert gist in str(error)
    assert error.position == position
    assert str(error).endswith(f"(at character {position + 1})")


@pytest.mark.parametrize("source", ["", "   ", "\n\t"])
def test_empty_expression(source):
    error = error_of(source)
    assert "empty" in str(error) and error.position is None


@pytest.mark.parametrize("value", [None, 5, ["a"], b"a + 1"])
def test_only_text_is_parsed(value):
    with pytest.raises(ExpressionError):
        parse(value)


def test_expression_error_is_a_value_error():
    assert issubclass(ExpressionError, ValueError)


# --- refusal of anything outside the grammar ------------------------------------------------------

@pytest.mark.parametrize("source", [
    "__class__",
    "x.__class__",
    "x.__class__.__mro__",
    "''.__class__",
    "(1).real",
    "'abc'.upper",
    "true.x",
    "x._private",
    "__import__('os')",
    "x[0]",
    "x['__class__']",
    "{}",
    "[1, 2]",
    "lambda: 1",
    "1 if x else 2",
    "x = 1",
    "x; y",
    "f'{x}'",
    "`x`",
    "x @ y",
    "a | b",
    "a & b",
    "~a",
    "x.y()",
    "round(x)(1)",
])
def test_refuses_what_is_not_in_the_grammar(source):
    with pytest.raises(ExpressionError):
        parse(source)


@pytest.mark.parametrize("name", ["eval", "exec", "open", "getattr", "len", "int", "print", "globals",
                                  "Sum", "SUM", "today", "now"])
def test_refuses_unknown_functions(name):
    error = error_of(f"{name}(1)")
    assert f"unknown function {name!r}" in str(error)


def test_refuses_too_long_input():
    assert parse(" " * (MAX_LENGTH - 1) + "1").evaluate({}) == 1
    error = error_of("1" + " " * MAX_LENGTH)
    assert f"longer than {MAX_LENGTH} characters" in str(error)
    error = error_of("+".join(["1"] * 1500))
    assert "longer than" in str(error)


@pytest.mark.parametrize("source", [
    "(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5),
    "not " * (MAX_DEPTH + 5) + "true",
    "-" * (MAX_DEPTH + 5) + "1",
    "-" * 1990 + "1",
    "sum(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5),
])
def test_refuses_too_deeply_nested_input(source):
    error = error_of(source)
    assert "nested too deeply" in str(error)
    assert error.position is not None


def test_refuses_too_long_chains():
    # Every operator in a chain nests the tree one level deeper; evaluation walks the tree.
    error = error_of("+".join(["1"] * (MAX_TREE_DEPTH + 1)))
    assert "nested too deeply" in str(error)
    error = error_of(" and ".join(["a"] * (MAX_TREE_DEPTH + 1)))
    assert "nested too deeply" in str(error)


def test_the_deepest_accepted_input_evaluates():
    chain = parse("+".join(["x"] * MAX_TREE_DEPTH))
    assert chain.evaluate({"x": 1}) == MAX_TREE_DEPTH
    assert chain.names == [("x",)]
    json.dumps(chain.tree)
    nested = parse("(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1))
    assert nested.evaluate({}) == 1
    assert parse("-" * (MAX_DEPTH - 1) + "1").evaluate({}) == -1


# --- properties -----------------------------------------------------------------------------------

TOKENS = ["a", "b", "g.x", "g", "1", "0", "2.5", "1e3", "'s'", "'2024-01-01'", "true", "false", "null",
          "+", "-", "*", "/", "(", ")", ",", "==", "!=", "<", "<=", ">", ">=", "and", "or", "not",
          "sum(", "mean(", "count(", "min(", "max(", "round(", "abs(", "if(", "coalesce(",
          "years_between(", "days_between(", " ", ".", "'", "__class__", "?"]

DOCUMENTS = [
    {},
    {"a": 1, "b": 0, "g": [{"x": 1}, {"x": None}, {"x": 2.5}]},
    {"a": "2024-01-01", "b": "1980-06-15", "g": [{"x": "t"}, 3, None]},
    {"a": True, "b": None, "g": {"x": [1, [2, "z"]]}},
    {"a": 1e308, "b": -1e308, "g": []},
]

PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


def _parse_or_refuse(source):
    try:
        return parse(source)
    except ExpressionError as exc:
        assert isinstance(str(exc), str)
        assert exc.position is None or 0 <= exc.position <= len(source)
        return None


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_random_text_parses_or_raises_expression_error(source):
    _parse_or_refuse(source)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_random_token_soup_parses_or_raises_expression_error(source):
    _parse_or_refuse(source)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_whatever_parses_evaluates_without_raising(source):
    expr = _parse_or_refuse(source)
    if expr is None:
        return
    assert all(isinstance(path, tuple) and path for path in expr.names)
    json.dumps(expr.tree)
    for data in DOCUMENTS:
        expr.evaluate(data)


@PROPERTY_SETTINGS
@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_arithmetic_agrees_with_python(a, b, c):
    data = {"a": a, "b": b, "c": c}
    assert ev("a + b * c", data) == a + b * c
    assert ev("(a - b) - c", data) == a - b - c
    assert ev("a - b - c", data) == a - b - c
    assert ev("-a * b", data) == -a * b
    assert ev("a < b", data) is (a < b)
    assert ev("a / b", data) == (None if b == 0 else a / b)


@PROPERTY_SETTINGS
@given(st.dates(), st.dates())
def test_date_functions_agree_with_the_calendar(a, b):
    data = {"a": a.isoformat(), "b": b.isoformat()}
    assert ev("days_between(a, b)", data) == (b - a).days
    years = ev("years_between(a, b)", data)
    if a <= b:
        # the last anniversary on or before b is ``years`` years after a
        assert years >= 0
        assert _anniversary(a, years) <= b
        following = _anniversary(a, years + 1)
        assert following is None or b < following


def _anniversary(day, years):
    """``day`` moved on by ``years`` (29 February becomes 1 March in a common year); None past 9999."""
    import datetime as dt

    year = day.year + years
    if year > dt.MAXYEAR:
        return None
    try:
        return day.replace(year=year)
    except ValueError:
        return dt.date(year, 3, 1)


def test_stored_calculations_round_half_away_from_zero_like_round(form_def):
    """derive stores a calculated number rounded as the language's round() and the browser do."""
    from ecrf.rules.derive import derive

    schema = {"type": "object", "properties": {
        "a": {"type": "number"},
        "half": {"type": "number", "x-ecrf": {"calculate": "a / 2", "decimals": 1}},
        "whole": {"type": "integer", "x-ecrf": {"calculate": "a / 2"}}}}
    form = form_def(schema)
    assert derive(form, {"a": 0.25}) == {"a": 0.25, "half": 0.1, "whole": 0}
    assert derive(form, {"a": 5}) == {"a": 5, "half": 2.5, "whole": 3}       # 2.5 -> 3, not 2
    assert derive(form, {"a": -5}) == {"a": -5, "half": -2.5, "whole": -3}
    assert derive(form, {"a": 0.5}) == {"a": 0.5, "half": 0.3, "whole": 0}   # 0.25 -> 0.3
