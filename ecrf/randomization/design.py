"""A study's randomization section read once: method, ratio, blocks, factors and strata.

Factors (``stratify_by``) are ``site`` and ``<form>.<field>`` names; a subject's value of a field
factor is the value of that field in the latest complete record of the form at a visit no later than
the randomization visit. Values are written as text the way code lists name them: strings as they
are, booleans ``true``/``false``, numbers as JSON. A stratum is the subject's values of every factor
in ``stratify_by`` order, written ``"site=01; dm.sex=F"`` (``""`` when the list is not stratified).
"""
import dataclasses
import itertools
import json

from ecrf.definitions.model import code_values

METHODS = ("permuted_blocks", "simple", "minimization")


@dataclasses.dataclass(frozen=True)
class Design:
    method: str
    #: ((arm id, weight), ...) in study.json order.
    ratio: tuple
    block_sizes: tuple
    block_order: str
    factors: tuple
    visit: str | None
    imbalance: str = "range"
    p: float = 0.8
    weights: tuple = ()      # ((factor, weight), ...)
    kits: tuple = ()         # ((arm, (kit, ...)), ...)

    @property
    def arms(self):
        return tuple(arm for arm, _ in self.ratio)

    @property
    def total_weight(self):
        return sum(w for _, w in self.ratio)

    def weight_of(self, factor):
        return dict(self.weights).get(factor, 1)

    def parameters(self):
        """JSON parameters of a list made from this design (stored and exported beside the seed)."""
        return {"method": self.method, "ratio": dict(self.ratio), "block_sizes": list(self.block_sizes),
                "block_order": self.block_order, "stratify_by": list(self.factors)}


def design_of(spec):
    """The Design of a loader Study, or None when it has no randomization section."""
    section = spec.document.get("randomization")
    if not section:
        return None
    ratio = tuple((arm, int(w)) for arm, w in section["ratio"].items())
    total = sum(w for _, w in ratio)
    sizes = tuple(section.get("block_sizes", ())) or (2 * total,)
    mini = section.get("minimization") or {}
    return Design(
        method=section.get("method", "permuted_blocks"), ratio=ratio, block_sizes=sizes,
        block_order=section.get("block_order", "random"), factors=tuple(section.get("stratify_by", ())),
        visit=section.get("visit"), imbalance=mini.get("imbalance", "range"), p=float(mini.get("p", 0.8)),
        weights=tuple((mini.get("weights") or {}).items()),
        kits=tuple((arm, tuple(kits)) for arm, kits in (section.get("kits") or {}).items()))


def value_text(value):
    """A field value as stratum text: strings as they are, anything else as JSON (true, 2)."""
    return value if isinstance(value, str) else json.dumps(value)


def factor_levels(spec, factor, site_keys):
    """The possible values of one factor: the site ids, or a field's code list (false/true)."""
    if factor == "site":
        return list(site_keys)
    form_id, field = factor.split(".", 1)
    schema = spec.forms[form_id].field(field).schema
    if schema.get("type") == "boolean":
        return ["false", "true"]
    return code_values(schema)


def stratum_key(factors, values):
    """``"site=01; dm.sex=F"`` from factor names and {factor: value text}."""
    return "; ".join(f"{factor}={values[factor]}" for factor in factors)


def strata(spec, design, site_keys):
    """Every stratum of a stratified list (one, ``""``, when nothing stratifies)."""
    levels = [factor_levels(spec, f, site_keys) for f in design.factors]
    return [stratum_key(design.factors, dict(zip(design.factors, combo, strict=True)))
            for combo in itertools.product(*levels)]
