"""The randomization and blinding sections as the loader checks them."""
import pytest

from ecrf.definitions import StudyInvalid, load_study
from ecrf.paths import resource
from ecrf.randomization.design import design_of, strata
from tests.randomization.conftest import study_document, write_rz_study


def errors(tmp_path, document):
    with pytest.raises(StudyInvalid) as info:
        load_study(write_rz_study(tmp_path, document))
    return [(e.pointer, e.message) for e in info.value.errors]


@pytest.mark.parametrize("method", ["permuted_blocks", "simple", "minimization"])
def test_each_method_loads(tmp_path, method):
    extra = {"minimization": {"imbalance": "variance", "p": 0.9, "weights": {"site": 0.5}}} \
        if method == "minimization" else {}
    spec = load_study(write_rz_study(tmp_path, study_document(method=method, **extra)))
    design = design_of(spec)
    assert design.method == method and design.factors == ("site", "elig.sex")
    if method == "minimization":
        assert (design.imbalance, design.p, design.weight_of("site"), design.weight_of("elig.sex")) == \
            ("variance", 0.9, 0.5, 1)


def test_strata_are_every_combination_of_sites_and_code_values(tmp_path):
    spec = load_study(write_rz_study(tmp_path, study_document(stratify_by=("site", "elig.smoker"))))
    assert strata(spec, design_of(spec), ["01", "02"]) == [
        "site=01; elig.smoker=false", "site=01; elig.smoker=true",
        "site=02; elig.smoker=false", "site=02; elig.smoker=true"]


def test_a_factor_that_is_not_a_code_list_or_boolean_is_refused(tmp_path):
    found = errors(tmp_path, study_document(stratify_by=("elig.age",)))
    assert found == [("/randomization/stratify_by/0",
                      "field 'elig.age' is neither a code list nor a boolean: only those can stratify")]


def test_a_factor_of_a_form_collected_after_randomization_is_refused(tmp_path):
    document = study_document(stratify_by=("site", "vitals.sbp"))
    document["randomization"]["visit"] = "screening"
    found = errors(tmp_path, document)
    assert ("/randomization/stratify_by/1",
            "form 'vitals' is not collected at or before the randomization visit 'screening'") in found


def test_unknown_fields_and_bad_names_are_refused(tmp_path):
    assert errors(tmp_path / "a", study_document(stratify_by=("elig.nope",))) == [
        ("/randomization/stratify_by/0", "form 'elig' has no field 'nope'")]
    found = errors(tmp_path / "b", study_document(stratify_by=("sex",)))
    assert [p for p, _ in found] == ["/randomization/stratify_by/0"]


def test_minimization_needs_factors_and_blocks_belong_to_blocks(tmp_path):
    found = errors(tmp_path, study_document(method="minimization", stratify_by=(), block_sizes=[4],
                                            minimization={"weights": {"elig.smoker": 2}}))
    assert ("/randomization/stratify_by", "minimization needs at least one factor") in found
    assert ("/randomization/block_sizes", "block_sizes applies only to permuted_blocks") in found
    assert ("/randomization/minimization/weights/elig.smoker",
            "'elig.smoker' is not one of /randomization/stratify_by") in found


def test_an_arm_restricted_visit_in_a_masked_study_is_refused_naming_the_visit(tmp_path):
    found = errors(tmp_path, study_document(arm_visits=True, masking="double"))
    assert len(found) == 1 and found[0][0] == "/visits/3/arms"
    assert "'week2_diary'" in found[0][1] and "masked" in found[0][1]


def test_an_arm_restricted_visit_in_an_open_label_study_loads(tmp_path):
    spec = load_study(write_rz_study(tmp_path, study_document(arm_visits=True, masking="none")))
    assert spec.visit("week2_diary").arms == ("aardvark",)


def test_kits_name_arms_and_are_unique(tmp_path):
    found = errors(tmp_path, study_document(kits={"aardvark": ["K1", "K2"], "zebu": ["K2"], "nope": ["K3"]}))
    assert ("/randomization/kits/nope", "no arm 'nope' in /arms") in found
    assert ("/randomization/kits/zebu/0", "kit 'K2' is listed twice (also for arm 'aardvark')") in found


@pytest.mark.parametrize("name, masked", [("mesrix-more", True), ("om-exosome", False)])
def test_the_reference_trials(name, masked):
    spec = load_study(resource("forms") / name)
    design = design_of(spec)
    assert design.method == "permuted_blocks" and dict(design.ratio) == {a: 1 for a in spec.arms}
    assert any(v.arms for v in spec.visits) is not masked
