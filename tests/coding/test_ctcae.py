"""The shipped CTCAE v5.0 term list: contents, search ranking, grades, the AE grade check."""
import dataclasses

import pytest

from ecrf.coding import ae, ctcae


def test_the_whole_term_list_is_shipped():
    terms = ctcae.terms()
    assert len(terms) == 837
    assert len({t.soc for t in terms}) == 26
    assert len({t.llt_code for t in terms}) == 837
    assert ctcae.terms() is terms  # read once
    with pytest.raises(dataclasses.FrozenInstanceError):
        terms[0].term = "changed"


def test_oral_mucositis_and_dry_mouth_with_their_defined_grades():
    mucositis = ctcae.search("Oral mucositis")[0]
    assert (mucositis.llt_code, mucositis.term, mucositis.soc) == (
        "10028130", "Mucositis oral", "Gastrointestinal disorders")
    assert sorted(ctcae.grades("10028130")) == [1, 2, 3, 4, 5]

    dry = ctcae.search("dry mouth")[0]
    assert (dry.llt_code, dry.term) == ("10013781", "Dry mouth")
    grades = ctcae.grades("10013781")
    assert sorted(grades) == [1, 2, 3]  # no grade 4 or 5 in the NCI table
    assert grades[3].startswith("Inability to adequately aliment orally")
    grades.clear()  # a copy: the cached term is untouched
    assert sorted(ctcae.grades(10013781)) == [1, 2, 3]


def test_a_grade_left_empty_is_not_offered():
    # Disseminated intravascular coagulation starts at grade 2.
    assert sorted(ctcae.grades("10013442")) == [2, 3, 4, 5]


def test_search_ranks_prefix_matches_first():
    names = [t.term for t in ctcae.search("mucositis")]
    assert names[0] == "Mucositis oral"  # the term starts with the query
    assert "Anal mucositis" in names[1:]
    assert [t.term for t in ctcae.search("dry")][:3] == ["Dry eye", "Dry mouth", "Dry skin"]
    assert [t.term for t in ctcae.search("DRY MO")] == ["Dry mouth"]
    assert len(ctcae.search("dry", limit=2)) == 2


def test_search_by_code_and_by_soc():
    assert [t.term for t in ctcae.search("10013781")] == ["Dry mouth"]
    assert {t.llt_code for t in ctcae.search("1001378")} >= {"10013781"}
    by_soc = ctcae.search("gastrointestinal", limit=1000)
    assert all("astrointestinal" in t.soc or "astrointestinal" in t.term for t in by_soc)
    # Terms naming the SOC's word come before those found only through their SOC.
    assert "astrointestinal" in by_soc[0].term
    assert ctcae.search("") == [] and ctcae.search("  ?! ") == []
    assert ctcae.search("zorblax") == []


def test_an_unknown_code_is_refused():
    with pytest.raises(ctcae.UnknownTerm, match="99999999"):
        ctcae.term("99999999")
    with pytest.raises(ctcae.UnknownTerm):
        ctcae.grades("")


@pytest.mark.parametrize(("data", "problem"), [
    ({"aeterm": "dry mouth", "aetoxgr": 4}, None),  # not coded: nothing to check
    ({"aellt": "10013781", "aetoxgr": None}, None),
    ({"aellt": "10013781", "aetoxgr": 3}, None),
    ({"aellt": "10013781", "aetoxgr": 4}, "'Dry mouth' defines grade(s) 1, 2, 3 only, not grade 4"),
    ({"aellt": 10013781, "aetoxgr": "5"}, "not grade 5"),
    ({"aellt": "10013442", "aetoxgr": 1}, "defines grade(s) 2, 3, 4, 5 only"),
    ({"aellt": "10028130", "aetoxgr": 5}, None),
    ({"aellt": "90001001", "aetoxgr": 5}, None),  # not a CTCAE term: CTCAE does not grade it
])
def test_grade_problem(data, problem):
    found = ae.grade_problem(data)
    if problem is None:
        assert found is None
    else:
        assert problem in found
