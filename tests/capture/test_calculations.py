"""Calculations of the reference studies against hand-worked examples, computed by the server (derive)
as every save does, and one calculation through save_form in a study written here.

EORTC QLQ-H&N35 (scoring manual, 3rd edition): raw score RS = mean of the items answered, when at
least half of the scale's items are answered (otherwise the score is missing); symptom score =
(RS - 1) / range * 100, range 3 for the 4-point items, 1 for the yes/no items 61-65 (1 No, 2 Yes).
XQ: mean of the items answered (0-10) * 10, when at least 4 of the 8 are answered.
"""
import pytest

from ecrf.definitions import load_study
from ecrf.paths import resource
from ecrf.rules.derive import derive

FORMS = resource("forms")


@pytest.fixture(scope="module")
def mesrix():
    return load_study(FORMS / "mesrix-ii")


def _hn35(mesrix, **items):
    return derive(mesrix.forms["hn35"], dict(qsperf="Y", qsdtc="2024-03-15", **items))


@pytest.mark.parametrize(("items", "scale", "score"), [
    # all four pain items 1, 2, 3, 4: RS 2.5 -> (1.5 / 3) * 100 = 50.0
    ({"q31": 1, "q32": 2, "q33": 3, "q34": 4}, "hnpa", 50.0),
    # two of four (half): RS (2 + 4) / 2 = 3 -> 2 / 3 * 100 = 66.67 -> 66.7
    ({"q31": 2, "q32": 4}, "hnpa", 66.7),
    # swallowing all "very much": 100; all "not at all": 0
    ({"q35": 4, "q36": 4, "q37": 4, "q38": 4}, "hnsw", 100.0),
    ({"q35": 1, "q36": 1, "q37": 1, "q38": 1}, "hnsw", 0.0),
    # social contact, 3 of 5 (at least half): RS (1 + 2 + 2) / 3 = 1.667 -> 0.667 / 3 * 100 = 22.2
    ({"q48": 1, "q55": 2, "q56": 2}, "hnsc", 22.2),
    # senses, 1 of 2 (half): RS 3 -> 66.7
    ({"q43": 3}, "hnse", 66.7),
    # speech 2 of 3: RS (3 + 4) / 2 = 3.5 -> 2.5 / 3 * 100 = 83.3
    ({"q46": 3, "q54": 4}, "hnsp", 83.3),
    # single items: dry mouth "quite a bit" (3): 2 / 3 * 100 = 66.7; sticky saliva "a little": 33.3
    ({"q41": 3}, "hndr", 66.7),
    ({"q42": 2}, "hnss", 33.3),
    # yes/no items: range 1, "yes" (2) -> 100, "no" (1) -> 0
    ({"q61": 2}, "hnpk", 100.0),
    ({"q64": 1}, "hnwl", 0.0),
])
def test_hn35_scale_scores(mesrix, items, scale, score):
    assert _hn35(mesrix, **items)[scale] == score


@pytest.mark.parametrize(("items", "scale"), [
    ({"q31": 4}, "hnpa"),                                  # 1 of 4: less than half
    ({"q48": 1, "q55": 2}, "hnsc"),                        # 2 of 5: less than half
    ({"q46": 4}, "hnsp"),                                  # 1 of 3
    ({}, "hndr"),                                          # the single item missing
])
def test_hn35_scales_with_too_few_items_are_missing(mesrix, items, scale):
    assert scale not in _hn35(mesrix, **items)


def test_hn35_items_of_a_questionnaire_not_done_are_cleared(mesrix):
    derived = derive(mesrix.forms["hn35"], {"qsperf": "N", "qsreasnd": "too tired", "q41": 3})
    assert "q41" not in derived and "hndr" not in derived


def _xq(mesrix, values):
    items = {f"xq{i + 1}": v for i, v in enumerate(values) if v is not None}
    return derive(mesrix.forms["xq"], dict(qsperf="Y", qsdtc="2024-03-15", **items))


def test_xq_summary_score(mesrix):
    # 2 + 4 + 6 + 8 + 1 + 3 + 5 + 7 = 36; mean 4.5 -> 45.0
    full = _xq(mesrix, [2, 4, 6, 8, 1, 3, 5, 7])
    assert (full["xq_score"], full["xq_n"], full["xq_imputed"]) == (45.0, 8, False)
    # four of eight: (10 + 10 + 0 + 5) / 4 = 6.25 -> 62.5, imputed from the items answered
    half = _xq(mesrix, [10, 10, 0, 5, None, None, None, None])
    assert (half["xq_score"], half["xq_n"], half["xq_imputed"]) == (62.5, 4, True)
    # three of eight: no score
    few = _xq(mesrix, [10, 10, 0])
    assert "xq_score" not in few and "xq_imputed" not in few and few["xq_n"] == 3


@pytest.mark.parametrize(("volume", "minutes", "rate", "grade"), [
    (1.5, 15, 0.1, 2),      # 1.5 mL / 15 min = 0.100 mL/min: CTCAE band 0.1-0.2 -> grade 2
    (1.2, 15, 0.08, 3),     # 0.080 < 0.1 -> grade 3
    (4.5, 15, 0.3, 1),      # 0.300 > 0.2 -> grade 1
    (2, 15.5, 0.129, 2),    # 2 / 15.5 = 0.12903 -> 0.129
])
def test_saliva_flow_rate(mesrix, volume, minutes, rate, grade):
    derived = derive(mesrix.forms["saliva"], {"uws_vol": volume, "uws_min": minutes})
    assert (derived["uws_rate"], derived["uws_ctcae"]) == (rate, grade)


def test_stimulated_flow_rate(mesrix):
    assert derive(mesrix.forms["saliva"], {"sws_vol": 5.5, "sws_min": 5})["sws_rate"] == 1.1


@pytest.mark.parametrize(("birth", "consent", "age"), [
    ("1960-06-15", "2021-06-14", 60),   # the day before the 61st birthday
    ("1960-06-15", "2021-06-15", 61),   # on the birthday
    ("2000-02-29", "2021-02-28", 20),   # born on 29 February: a year older on 1 March
    ("2000-02-29", "2021-03-01", 21),
])
def test_age_at_consent(mesrix, birth, consent, age):
    assert derive(mesrix.forms["dm"], {"brthdtc": birth, "icdat": consent})["age"] == age


@pytest.mark.parametrize(("weight", "height", "bmi"), [
    (70, 175, 22.9),     # 70 / 1.75^2 = 22.857
    (95.5, 180, 29.5),   # 95.5 / 3.24 = 29.475 -> 29.5 (half away from zero)
    (50, 160, 19.5),     # 50 / 2.56 = 19.53
])
def test_bmi(mesrix, weight, height, bmi):
    assert derive(mesrix.forms["vs"], {"weight": weight, "height": height})["bmi"] == bmi


def test_a_calculation_with_a_missing_input_is_absent(mesrix):
    assert "bmi" not in derive(mesrix.forms["vs"], {"weight": 70})
    assert "uws_rate" not in derive(mesrix.forms["saliva"], {"uws_vol": 1.0})


def test_group_calculations_through_the_service(make_study, db, actor):
    from ecrf.capture.service import enrol_subject, save_form

    schema = {"type": "object", "properties": {
        "inj": {"type": "array", "items": {"type": "object", "properties": {
            "side": {"enum": ["L", "R"]}, "dose": {"type": "number"}}}},
        "glands": {"type": "integer", "readOnly": True, "x-ecrf": {"calculate": "count(inj.side)"}},
        "total": {"type": "number", "readOnly": True, "x-ecrf": {"calculate": "sum(inj.dose)", "decimals": 1}},
        "mean": {"type": "number", "readOnly": True, "x-ecrf": {"calculate": "total / glands", "decimals": 2}}}}
    make_study({"ex": schema}, study_id="c")
    subject = enrol_subject(db, actor, "c", "01").key
    saved = save_form(db, actor, "c", subject, "v1", "ex",
                      {"inj": [{"side": "L", "dose": 25}, {"side": "R", "dose": 25.04}, {"dose": 1}]})
    assert {k: saved.record.data[k] for k in ("glands", "total", "mean")} == {"glands": 2, "total": 51.0,
                                                                              "mean": 25.5}
