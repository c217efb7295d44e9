"""The CTCAE v5.0 term list (``ctcae_v5.0.csv`` beside this module; provenance in CTCAE-SOURCE.md).

Each term is a MedDRA LLT with its SOC and the grades (1-5) it defines; a grade left empty in the
NCI table does not exist for that term (Dry mouth stops at grade 3) and is never offered.
"""
import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from ecrf.coding import match
from ecrf.errors import NotFound

SOURCE = Path(__file__).with_name("ctcae_v5.0.csv")
VERSION = "5.0"


class UnknownTerm(NotFound):
    """No CTCAE v5.0 term has this LLT code."""


@dataclass(frozen=True)
class Term:
    llt_code: str
    term: str
    soc: str
    #: ((grade, text), ...) for the grades the term defines, in order.
    grades: tuple
    definition: str

    def grade_texts(self):
        """{grade: text} for the defined grades (a new dict: the cached term stays frozen)."""
        return dict(self.grades)


@functools.cache
def terms():
    """Every CTCAE v5.0 term, in the order of the NCI table (read once, immutable)."""
    with SOURCE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return tuple(Term(llt_code=row["meddra_llt_code"].strip(), term=row["ctcae_term"].strip(),
                      soc=row["meddra_soc"].strip(),
                      grades=tuple((g, row[f"grade_{g}"].strip()) for g in range(1, 6)
                                   if row[f"grade_{g}"].strip()),
                      definition=row["definition"].strip())
                 for row in rows)


@functools.cache
def _by_code():
    return {t.llt_code: t for t in terms()}


def term(llt_code):
    """The term with this MedDRA LLT code; UnknownTerm when CTCAE has none."""
    found = _by_code().get(str(llt_code).strip())
    if found is None:
        raise UnknownTerm(f"no CTCAE v{VERSION} term has the LLT code {llt_code!r}")
    return found


def grades(llt_code):
    """{grade: text} for the grades the term defines (only those: no empty grades)."""
    return term(llt_code).grade_texts()


@functools.cache
def grade_map():
    """{LLT code: [defined grades]} of every term: what a form page needs to offer only those."""
    return {t.llt_code: [g for g, _ in t.grades] for t in terms()}


def search(query, limit=20):
    """Terms matching ``query`` (words of the term, an LLT code or the SOC), best first."""
    return match.search(terms(), query, limit, lambda t: (t.term, t.llt_code, (t.soc,)))
