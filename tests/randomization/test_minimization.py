"""Pocock–Simon minimization: the imbalance functions, the biased coin, and the scores checked
against an independent implementation (the ``smallerize`` package, when installed: a test oracle,
not a dependency of ecrf)."""
import random

import pytest

from ecrf.randomization import minimization
from ecrf.randomization.design import Design

LEVELS = {"site": ["01", "02", "03"], "sex": ["F", "M"], "smoker": ["false", "true"]}


def design(ratio=(("a", 1), ("b", 1)), imbalance="range", p=0.8, weights=()):
    return Design("minimization", ratio, (), "random", tuple(LEVELS), None, imbalance, p, weights)


def test_imbalance_functions():
    assert minimization.imbalance([3, 1, 2], "range") == 2
    assert minimization.imbalance([3, 1], "variance") == 1.0


def test_the_arm_that_balances_is_preferred_with_probability_p():
    d = design(p=0.8)
    counts = {}
    minimization.add_count(counts, {"site": "01", "sex": "F", "smoker": "false"}, "a")
    person = {"site": "01", "sex": "F", "smoker": "false"}
    assert minimization.scores(d, counts, person) == {"a": 6, "b": 0}
    picks = [minimization.choose_arm(d, counts, person, random.Random(n))[0] for n in range(2000)]
    assert 0.75 < picks.count("b") / len(picks) < 0.85
    always = design(p=1.0)
    assert {minimization.choose_arm(always, counts, person, random.Random(n))[0] for n in range(50)} == {"b"}


def test_site_counts_once_and_weights_scale_factors():
    counts = {}
    minimization.add_count(counts, {"site": "01", "sex": "M", "smoker": "true"}, "a")
    person = {"site": "01", "sex": "F", "smoker": "false"}
    # Only the site is shared with the earlier subject: it adds its imbalance once.
    assert minimization.scores(design(), counts, person) == {"a": 4, "b": 2}
    assert minimization.scores(design(weights=(("site", 3),)), counts, person) == {"a": 8, "b": 2}


def test_unequal_ratios_divide_the_count_after_assignment():
    # With 2:1, one subject already on a and the candidate on a: (1 + 1) / 2 against 0 / 1. (smallerize
    # adds the candidate after dividing, 1 / 2 + 1, so the oracle below is asked about equal ratios.)
    d = Design("minimization", (("a", 2), ("b", 1)), (), "random", ("sex",), None, "range", 0.8)
    counts = {}
    minimization.add_count(counts, {"sex": "F"}, "a")
    assert minimization.scores(d, counts, {"sex": "F"}) == {"a": 1.0, "b": 0.5}


@pytest.mark.parametrize("imbalance, ratio", [("range", (("a", 1), ("b", 1))),
                                              ("variance", (("a", 1), ("b", 1))),
                                              ("variance", (("a", 1), ("b", 1), ("c", 1))),
                                              ("range", (("a", 1), ("b", 1), ("c", 1)))])
def test_scores_agree_with_smallerize(imbalance, ratio):
    smallerize = pytest.importorskip("smallerize")
    ours = design(ratio=ratio, imbalance=imbalance)
    oracle = smallerize.Minimizer(
        factors=[smallerize.Factor(name, levels) for name, levels in LEVELS.items()],
        arms=[smallerize.Arm(arm, weight) for arm, weight in ratio],
        d_imbalance_method=imbalance, total_imbalance_method="sum", probability_method="biased_coin",
        preferred_p=0.8)
    rng = random.Random(7)
    counts = {}
    arms = [a for a, _ in ratio]
    for _ in range(300):
        person = {f: rng.choice(levels) for f, levels in LEVELS.items()}
        mine = minimization.scores(ours, counts, person)
        theirs = oracle.get_new_total_imbalances(person)
        # smallerize's variance is the sample variance (n - 1), ours the population variance.
        scale = len(arms) / (len(arms) - 1) if imbalance == "variance" else 1
        assert mine == pytest.approx({a: v / scale for a, v in theirs.items()})
        arm = rng.choice(arms)
        minimization.add_count(counts, person, arm)
        oracle.add_existing_participant(person, arm)
