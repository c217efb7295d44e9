"""Deriving a concealed allocation list from a seed: pure functions, no database.

The derivation is published so that a statistician can repeat it from an export (docs/
study-definitions.md, "Re-deriving a list"): for each stratum, in the order ``strata`` gives,
a ``random.Random`` is seeded with the integer of the SHA-256 of ``"<seed>:<stratum>"`` (UTF-8, big
endian). Permuted blocks then repeat: pick the block size (``rng.choice(block_sizes)`` when
``block_order`` is ``random``, else the sizes in turn), build the block as each arm in ratio order
repeated ``weight * size / total`` times, ``rng.shuffle`` it; until the stratum holds at least
``size`` slots (whole blocks). Simple randomization draws each slot with
``rng.choices(arms, weights)[0]``. Randomization numbers run 1, 2, 3 … over the strata in order,
slots in position order; kits are handed out per arm in randomization-number order.
"""
import dataclasses
import hashlib
import random
import secrets


@dataclasses.dataclass(frozen=True)
class Slot:
    stratum: str
    position: int
    randomization_number: int
    arm: str
    block: int | None = None
    kit: str | None = None


def new_seed():
    """64 hex digits from the operating system's secure generator."""
    return secrets.token_hex(32)


def stratum_rng(seed, stratum):
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{stratum}".encode()).digest(), "big"))


def _stratum_arms(rng, design, size):
    """(arm, block) for one stratum: at least ``size`` slots."""
    arms, weights = design.arms, [w for _, w in design.ratio]
    if design.method == "simple":
        return [(rng.choices(arms, weights)[0], None) for _ in range(size)]
    out, block = [], 0
    while len(out) < size:
        if design.block_order == "in_turn":
            length = design.block_sizes[block % len(design.block_sizes)]
        else:
            length = rng.choice(design.block_sizes)
        cells = [arm for arm, w in design.ratio for _ in range(w * length // design.total_weight)]
        rng.shuffle(cells)
        block += 1
        out.extend((arm, block) for arm in cells)
    return out


def derive_slots(seed, design, strata, size):
    """Every slot of a list of ``size`` (at least) per stratum."""
    slots, number = [], 0
    kits = {arm: list(numbers) for arm, numbers in design.kits}
    for stratum in strata:
        rng = stratum_rng(seed, stratum)
        for position, (arm, block) in enumerate(_stratum_arms(rng, design, size), start=1):
            number += 1
            slots.append(Slot(stratum, position, number, arm, block))
    if kits:
        used = dict.fromkeys(kits, 0)
        with_kits = []
        for slot in slots:
            kit = None
            if slot.arm in kits and used[slot.arm] < len(kits[slot.arm]):
                kit = kits[slot.arm][used[slot.arm]]
                used[slot.arm] += 1
            with_kits.append(dataclasses.replace(slot, kit=kit))
        slots = with_kits
    return slots
