"""Pocock–Simon minimization with a biased coin: pure functions, no database.

For each candidate arm, the subject is added to it hypothetically; for each factor, the counts of
earlier subjects with the subject's level of that factor are taken per arm, each divided by the arm's
ratio weight, and their imbalance is the range (max − min) or the population variance. The total is
the sum over factors of factor weight × imbalance. When every arm scores the same the arm is drawn
by ratio; otherwise the arm with the least total (ties drawn evenly) is taken with probability ``p``
and one of the other arms (drawn by ratio) otherwise. The site is one factor like any other, so it
counts once. The draws come from ``random.Random`` seeded with SHA-256 of
``"<seed>:minimization:<randomization number>"``, so a decision is repeated exactly from the list's
seed and the order of randomization.
"""
import hashlib
import random


def imbalance(values, kind):
    if kind == "variance":
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / len(values)
    return max(values) - min(values)


def scores(design, counts, levels):
    """{arm: total imbalance if the subject went there}; ``counts[factor][level][arm]`` are the
    earlier subjects, ``levels`` the subject's {factor: level}."""
    arms = design.arms
    weight = dict(design.ratio)
    out = {}
    for candidate in arms:
        total = 0.0
        for factor in design.factors:
            row = counts.get(factor, {}).get(levels[factor], {})
            adjusted = [(row.get(arm, 0) + (arm == candidate)) / weight[arm] for arm in arms]
            total += design.weight_of(factor) * imbalance(adjusted, design.imbalance)
        out[candidate] = total
    return out


def decision_rng(seed, number):
    digest = hashlib.sha256(f"{seed}:minimization:{number}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def choose_arm(design, counts, levels, rng):
    """The arm for one subject, and the scores it was chosen on."""
    totals = scores(design, counts, levels)
    arms, weights = design.arms, [w for _, w in design.ratio]
    least = min(totals.values())
    best = [arm for arm in arms if totals[arm] == least]
    coin = rng.random()
    if len(best) == len(arms):
        return rng.choices(arms, weights)[0], totals
    if coin < design.p:
        return rng.choice(best), totals
    others = [(arm, w) for arm, w in design.ratio if arm not in best]
    return rng.choices([a for a, _ in others], [w for _, w in others])[0], totals


def add_count(counts, levels, arm):
    for factor, level in levels.items():
        row = counts.setdefault(factor, {}).setdefault(level, {})
        row[arm] = row.get(arm, 0) + 1
