"""Capture refuses a CTCAE grade the coded term does not define; the lookup page finds terms."""
import pytest

from ecrf.capture.service import enrol_subject, save_form
from ecrf.errors import Invalid

DRY_MOUTH = "10013781"


@pytest.fixture
def ae_study(load_study, make_user):
    load_study("mesrix-ii")
    make_user("nurse", "site_staff", "mesrix-ii")
    return "mesrix-ii"


def _ae(grade, code=DRY_MOUTH):
    data = {"aeterm": "Dry mouth", "aestdat": "2026-11-02", "aeongo": "Y", "aetoxgr": grade, "aeser": "N"}
    return dict(data, aellt=code) if code else data


def test_a_coded_term_accepts_only_its_defined_grades(ae_study, db, actor):
    subject = enrol_subject(db, actor, ae_study, "01")
    save_form(db, actor, ae_study, subject.key, "", "ae", _ae(2))
    with pytest.raises(Invalid) as refused:
        save_form(db, actor, ae_study, subject.key, "", "ae", _ae(4))
    assert refused.value.errors == [("/aetoxgr", "CTCAE v5.0 'Dry mouth' defines grade(s) 1, 2, 3 only, "
                                                 "not grade 4")]
    save_form(db, actor, ae_study, subject.key, "", "ae", _ae(4, code=None))  # not coded: any grade


def test_the_lookup_page_lists_terms_with_codes_and_grades(client, login_as, ae_study):
    assert client.get("/coding/ctcae?q=dry+mouth").status_code == 302  # signed-in users only
    login_as("nurse")
    html = client.get("/coding/ctcae?q=dry+mouth").get_data(as_text=True)
    assert DRY_MOUTH in html and "Dry mouth" in html
