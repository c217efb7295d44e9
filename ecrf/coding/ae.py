"""Checks of an AE record against its CTCAE coding, for capture to call (no Flask, no database).

The AE log codes the reported term with its CTCAE v5.0 LLT code in ``aellt`` (when the form has
such a field); ``aetoxgr`` must then be one of the grades that term defines.
"""
from ecrf.coding import ctcae


def grade_problem(ae_data):
    """A message when ``aetoxgr`` is a grade the coded CTCAE term does not define, else None.

    None also when the record is not coded (no ``aellt``), has no grade yet, or is coded with an
    LLT that is not a CTCAE term (a MedDRA-only code: CTCAE does not grade it).
    """
    code, grade = ae_data.get("aellt"), ae_data.get("aetoxgr")
    if code in (None, "") or grade in (None, ""):
        return None
    try:
        term = ctcae.term(code)
    except ctcae.UnknownTerm:
        return None
    defined = term.grade_texts()
    try:
        grade = int(grade)
    except (TypeError, ValueError):
        return f"CTCAE grade {grade!r} is not a number from 1 to 5"
    if grade in defined:
        return None
    allowed = ", ".join(str(g) for g in defined)
    return f"CTCAE v{ctcae.VERSION} '{term.term}' defines grade(s) {allowed} only, not grade {grade}"
