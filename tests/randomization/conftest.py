"""A small randomized study written per test: two arms whose ids and labels appear nowhere else
(so a page that shows one has leaked the allocation), two sites, an eligibility form holding the
stratification fields, and randomization at the baseline visit."""
import json

import pytest

from ecrf.capture.service import enrol_subject, save_form

ARMS = [{"id": "aardvark", "label": "Quokkafen", "type": "experimental"},
        {"id": "zebu", "label": "Wombatine", "type": "placebo_comparator"}]
ELIG = {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Eligibility", "type": "object",
    "properties": {
        "inc_ok": {"type": "boolean", "title": "Meets every inclusion criterion"},
        "sex": {"type": "string", "title": "Sex", "enum": ["F", "M"]},
        "smoker": {"type": "boolean", "title": "Smoker"},
        "age": {"type": "integer", "title": "Age"},
    },
    "required": ["inc_ok"]}
VITALS = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Vital signs", "type": "object",
          "properties": {"sbp": {"type": "integer", "title": "Systolic blood pressure"}}}


def study_document(study_id="rz", method="permuted_blocks", stratify_by=("site", "elig.sex"),
                   masking="quadruple", arm_visits=False, **randomization):
    section = {"method": method, "ratio": {"aardvark": 1, "zebu": 1}, "visit": "baseline",
               "stratify_by": list(stratify_by), **randomization}
    if method == "permuted_blocks":
        section.setdefault("block_sizes", [2, 4])
    visits = [{"id": "screening", "label": "Screening", "day": -7, "window_before": 7, "forms": ["elig"]},
              {"id": "baseline", "label": "Baseline", "day": 0, "forms": ["vitals"]},
              {"id": "week2", "label": "Week 2", "day": 14, "window_before": 2, "window_after": 2,
               "forms": ["vitals"]}]
    if arm_visits:
        visits.append({"id": "week2_diary", "label": "Week 2 diary", "day": 14, "window_after": 2,
                       "forms": ["vitals"], "arms": ["aardvark"]})
    blinding = {"masking": masking}
    if masking != "none":
        blinding["unblinded_roles"] = ["pharmacist"]
        blinding["unblinding_contacts"] = ["safety@example.org"]
    return {"id": study_id, "title": "Randomized test study", "arms": ARMS, "randomization": section,
            "blinding": blinding, "visits": visits,
            "sites": [{"id": "01", "name": "Site one", "timezone": "UTC"},
                      {"id": "02", "name": "Site two", "timezone": "UTC"}],
            "eligibility": {"form": "elig", "inclusion": ["inc_ok"]}}


def write_rz_study(root, document):
    folder = root / document["id"]
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps(document), encoding="utf-8")
    (folder / "elig.json").write_text(json.dumps(ELIG), encoding="utf-8")
    (folder / "vitals.json").write_text(json.dumps(VITALS), encoding="utf-8")
    return folder


@pytest.fixture
def rz_study(tmp_path, load_study):
    """Factory: load a randomized study (options of ``study_document``); returns its id."""
    counter = iter(range(100))

    def make(**options):
        document = study_document(**options)
        load_study(write_rz_study(tmp_path / f"s{next(counter)}", document))
        return document["id"]

    return make


@pytest.fixture
def enrolled(db, actor):
    """Factory: an enrolled subject at ``site`` with eligibility values (sex F by default)."""

    def make(study_id, site="01", sex="F", smoker=False, complete=True):
        subject = enrol_subject(db, actor, study_id, site)
        data = {"inc_ok": True, "smoker": smoker}
        if sex is not None:
            data["sex"] = sex
        save_form(db, actor, study_id, subject.key, "screening", "elig", data, complete=complete)
        return subject

    return make
