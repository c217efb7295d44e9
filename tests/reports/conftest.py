"""Fixtures for SAE reports and casebooks: a small study with a CDASH AE log, written to tmp_path.

forms/demo has no AE form, so these tests write their own study: two sites (Copenhagen and Nanning),
demographics and exposure at visits, an AE log and a CM log, and two arms with distinctive names so a
test can prove that a blinded report never carries them.
"""
import io
import json
import re
import types

import pytest

from ecrf.auth.accounts import create_token

YN = {"type": "string", "enum": ["Y", "N"], "x-ecrf": {"labels": {"Y": "Yes", "N": "No"}}}
PARTIAL_DATE = {"type": "string", "pattern": "^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$"}
RELATED = {"type": "string", "enum": ["NOT RELATED", "UNLIKELY RELATED", "POSSIBLY RELATED",
                                      "PROBABLY RELATED", "RELATED"],
           "x-ecrf": {"labels": {"NOT RELATED": "Not related", "UNLIKELY RELATED": "Unlikely related",
                                 "POSSIBLY RELATED": "Possibly related",
                                 "PROBABLY RELATED": "Probably related", "RELATED": "Definitely related"}}}

#: Arm ids and labels no other text of a report contains.
ARM_WORDS = ("armzeta", "Zetacell", "armomega", "Omegasal")


def _field(title, schema):
    return dict(schema, title=title)


AE_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Adverse events",
    "type": "object",
    "properties": {
        "aeterm": _field("Adverse event", {"type": "string", "minLength": 2, "maxLength": 200}),
        "aestdat": _field("Start date", PARTIAL_DATE),
        "aeongo": _field("Ongoing", YN),
        "aeendat": _field("End date", PARTIAL_DATE),
        "aetoxgr": _field("CTCAE grade", {"type": "integer", "enum": [1, 2, 3, 4, 5]}),
        "aeser": _field("Serious", YN),
        "aesdth": _field("Results in death", YN),
        "aeslife": _field("Is life-threatening", YN),
        "aeshosp": _field("Requires or prolongs hospitalisation", YN),
        "aesdisab": _field("Persistent or significant disability", YN),
        "aescong": _field("Congenital anomaly", YN),
        "aesmie": _field("Other medically important event", YN),
        "aerel": _field("Relationship to the study treatment", RELATED),
        "aerelpr": _field("Relationship to the injection procedure", RELATED),
        "aeacn": _field("Action taken with the study treatment",
                        {"type": "string", "enum": ["DOSE NOT CHANGED", "DRUG WITHDRAWN", "NOT APPLICABLE"],
                         "x-ecrf": {"labels": {"DOSE NOT CHANGED": "Dose not changed",
                                               "DRUG WITHDRAWN": "Drug withdrawn",
                                               "NOT APPLICABLE": "Not applicable"}}}),
        "aeout": _field("Outcome", {"type": "string", "enum": ["RECOVERED/RESOLVED", "RECOVERING/RESOLVING",
                                                             "NOT RECOVERED/NOT RESOLVED", "FATAL"],
                                    "x-ecrf": {"labels": {"RECOVERED/RESOLVED": "Recovered/resolved",
                                                          "RECOVERING/RESOLVING": "Recovering/resolving",
                                                          "NOT RECOVERED/NOT RESOLVED":
                                                              "Not recovered/not resolved",
                                                          "FATAL": "Fatal"}}}),
        "aecontrt": _field("Treatment given for the event", YN),
        "saeawdtc": _field("Investigator aware of the SAE", {"type": "string", "format": "date-time"}),
        "saehosdt": _field("Hospital admission", {"type": "string", "format": "date"}),
        "saedisdt": _field("Hospital discharge", {"type": "string", "format": "date"}),
        "saenarr": _field("SAE narrative", {"type": "string", "maxLength": 40000}),
        "saehist": _field("Relevant history and tests", {"type": "string", "maxLength": 4000}),
        "saeexpect": _field("Expectedness", {"type": "string", "enum": ["EXPECTED", "UNEXPECTED"],
                                             "x-ecrf": {"labels": {"EXPECTED": "Expected",
                                                                   "UNEXPECTED": "Unexpected"}}}),
    },
    "required": ["aeterm"],
}

CM_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Concomitant medications",
    "type": "object",
    "properties": {
        "cmtrt": _field("Medication", {"type": "string", "maxLength": 200}),
        "cmindc": _field("Indication", {"type": "string", "maxLength": 200}),
        "cmaeno": _field("Adverse event entry number", {"type": "integer", "minimum": 1}),
        "cmdstxt": _field("Dose", {"type": "string", "maxLength": 40}),
        "cmdosu": _field("Dose unit", {"type": "string", "enum": ["mg", "mL"]}),
        "cmroute": _field("Route", {"type": "string", "enum": ["ORAL", "INTRAVENOUS"],
                                    "x-ecrf": {"labels": {"ORAL": "Oral", "INTRAVENOUS": "Intravenous"}}}),
        "cmstdat": _field("Start date", PARTIAL_DATE),
        "cmongo": _field("Ongoing", YN),
        "cmendat": _field("End date", PARTIAL_DATE),
    },
    "required": ["cmtrt"],
}

DM_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Demographics",
    "type": "object",
    "properties": {
        "brthdtc": _field("Date of birth", {"type": "string", "format": "date",
                                            "x-ecrf": {"missing": ["unknown", "not_done"]}}),
        "age": _field("Age", {"type": "integer", "minimum": 18, "x-ecrf": {"unit": "years"}}),
        "sex": _field("Sex", {"type": "string", "enum": ["M", "F"],
                              "x-ecrf": {"labels": {"M": "Male", "F": "Female"}}}),
        "initials": _field("Initials (never reported)", {"type": "string", "maxLength": 3}),
    },
    "required": ["sex", "age"],
}

EX_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Study treatment",
    "type": "object",
    "properties": {
        "exstdtc": _field("Date of treatment", {"type": "string", "format": "date"}),
        "exkit": _field("Kit number", {"type": "string", "maxLength": 40}),
        "exvoltot": _field("Total volume injected", {"type": "number", "x-ecrf": {"unit": "mL"}}),
    },
    "required": ["exstdtc"],
}


def write_study(root, study_id="saetest", masking="quadruple"):
    """Write the test study folder under ``root``; return its path."""
    folder = root / study_id
    folder.mkdir(parents=True)
    study = {
        "id": study_id,
        "title": "SAE reporting test study",
        "protocol": {"number": "SAE-TEST-01", "sponsor": "Rigshospitalet sponsor office",
                     "phase": "2", "registry_ids": ["NCT00000001"]},
        "arms": [{"id": "armzeta", "label": "Zetacell active", "description": "Zetacell injections"},
                 {"id": "armomega", "label": "Omegasal placebo", "description": "Omegasal injections"}],
        "blinding": {"masking": masking, "unblinded_roles": ["pharmacist"]},
        "sites": [{"id": "01", "name": "Rigshospitalet", "timezone": "Europe/Copenhagen", "country": "DK"},
                  {"id": "02", "name": "广西医科大学第一附属医院", "timezone": "Asia/Shanghai", "country": "CN"}],
        "safety": {"ae_form": "ae", "report_within_hours": 24},
        "visits": [{"id": "screening", "label": "Screening", "day": -7, "forms": ["dm"]},
                   {"id": "day0", "label": "Day 0", "day": 0, "forms": ["ex"]}],
        "log_forms": ["ae", "cm"],
    }
    for name, doc in {"study": study, "ae": AE_FORM, "cm": CM_FORM, "dm": DM_FORM, "ex": EX_FORM}.items():
        (folder / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


#: A complete serious AE (hospitalisation), as a site would save it.
SERIOUS_AE = {
    "aeterm": "Salivary gland swelling", "aestdat": "2026-11-19", "aeongo": "Y", "aetoxgr": 3,
    "aeser": "Y", "aesdth": "N", "aeslife": "N", "aeshosp": "Y", "aesdisab": "N", "aescong": "N",
    "aesmie": "N", "aerel": "POSSIBLY RELATED", "aerelpr": "PROBABLY RELATED",
    "aeacn": "NOT APPLICABLE", "aeout": "RECOVERING/RESOLVING", "aecontrt": "Y",
    "saeawdtc": "2026-11-20T09:30:00+01:00", "saehosdt": "2026-11-20",
    "saenarr": "Patienten fik hævelse af glandula submandibularis; behandlet på øre-næse-hals-afdelingen.",
    "saehist": "Strålebehandling 2019.",
}


@pytest.fixture
def sae_study(tmp_path, load_study):
    """Factory: load the test study with the given masking; returns its loader Study."""

    def make(masking="quadruple", study_id="saetest"):
        return load_study(write_study(tmp_path / "studies", study_id, masking))

    return make


@pytest.fixture
def site_subject(db, actor):
    """Factory: enrol a subject at a site with demographics, one treatment, a CM log, and an AE."""
    from ecrf.capture.service import enrol_subject, save_form

    def make(study="saetest", site="01", key="01-001", ae=None, meds=True):
        enrol_subject(db, actor, study, site, key)
        save_form(db, actor, study, key, "screening", "dm",
                  {"sex": "F", "age": 61, "brthdtc": "1965-04-02", "initials": "QXZ"}, complete=True)
        save_form(db, actor, study, key, "day0", "ex",
                  {"exstdtc": "2026-11-18", "exkit": "K-0042", "exvoltot": 2.0}, complete=True)
        if meds:
            save_form(db, actor, study, key, "", "cm",
                      {"cmtrt": "Pilocarpin", "cmindc": "Mundtørhed", "cmdstxt": "5", "cmdosu": "mg",
                       "cmroute": "ORAL", "cmstdat": "2025-01", "cmongo": "Y"}, complete=True)
            save_form(db, actor, study, key, "", "cm",
                      {"cmtrt": "Dicloxacillin", "cmindc": "Salivary gland swelling", "cmaeno": 1,
                       "cmdstxt": "1000", "cmdosu": "mg", "cmroute": "INTRAVENOUS",
                       "cmstdat": "2026-11-20", "cmongo": "Y"}, complete=True)
        result = save_form(db, actor, study, key, "", "ae", dict(SERIOUS_AE if ae is None else ae),
                           complete=True)
        return result.record

    return make


@pytest.fixture
def bearer(db, actor):
    """Authorization headers for a user's new API token."""

    def make(username):
        return {"Authorization": f"Bearer {create_token(db, actor, username)}"}

    return make


def pdf_pages(data):
    """Text of each page of a PDF, as pypdf extracts it."""
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def flat(text):
    """Latin text with line wraps undone (pypdf inserts a newline at each wrap)."""
    return " ".join(text.split())


def cjk(text):
    """CJK text with all white space removed (pypdf puts none between CJK characters anyway)."""
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="session")
def kit():
    """The helpers and test data of this folder (test modules here import nothing from each other)."""
    return types.SimpleNamespace(write_study=write_study, SERIOUS_AE=SERIOUS_AE, ARM_WORDS=ARM_WORDS,
                                 pdf_pages=pdf_pages, flat=flat, cjk=cjk, PASSWORD="correct horse battery")


@pytest.fixture
def quick_pdf(monkeypatch):
    """Issue reports with a stand-in for WeasyPrint, for tests about the workflow rather than the PDF
    (each real render costs a few hundred milliseconds); the bytes still differ with the content."""
    import hashlib

    from ecrf.reports import pdf, service

    def render(template, context, fetcher=None):
        digest = hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode()).hexdigest()
        return pdf.RenderedPdf(b"%PDF-1.7\n% stand-in " + digest.encode() + b"\n%%EOF\n", 1)

    monkeypatch.setattr(service, "render_pdf", render)
