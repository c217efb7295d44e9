"""Capture fixtures: studies written in tmp_path (the kitchen-sink form of tests/formgen, an AE-like
log form) published to the test database, with one enrolled subject."""
import json
import types
from pathlib import Path

import pytest

from ecrf.definitions import load_study

KITCHEN_SINK = json.loads((Path(__file__).parents[1] / "formgen" / "kitchen_sink.json").read_text(encoding="utf-8"))
LOG = {"type": "object", "title": "Events",
       "properties": {"term": {"type": "string", "title": "Term", "maxLength": 200},
                      "ongoing": {"enum": ["Y", "N"], "title": "Ongoing"},
                      "ended": {"type": "string", "format": "date", "title": "Ended",
                                "x-ecrf": {"show_if": {"properties": {"ongoing": {"const": "N"}},
                                                       "required": ["ongoing"]}}}},
       "required": ["term"], "x-ecrf": {"summary": ["term", "ongoing"]}}


def write_study(root, forms, *, study_id="t", log_forms=(), visits=None, sites=None):
    folder = Path(root) / study_id
    folder.mkdir(parents=True)
    visit_forms = [f for f in forms if f not in log_forms]
    study = {"id": study_id, "title": f"Study {study_id}",
             "sites": sites or [{"id": "01", "name": "Site one", "timezone": "Europe/Copenhagen"},
                                {"id": "02", "name": "Site two", "timezone": "UTC"}],
             "visits": visits or [{"id": "v1", "label": "Visit 1", "day": 0, "forms": visit_forms}]}
    if log_forms:
        study["log_forms"] = list(log_forms)
    (folder / "study.json").write_text(json.dumps(study), encoding="utf-8")
    for form_id, schema in forms.items():
        (folder / f"{form_id}.json").write_text(json.dumps(schema), encoding="utf-8")
    return folder


@pytest.fixture
def form_def(tmp_path):
    """Factory: the FormDef of a form schema, loaded (not stored) by the real loader."""
    counter = iter(range(1000))

    def make(schema, form_id="f"):
        return load_study(write_study(tmp_path / f"defs{next(counter)}", {form_id: schema})).forms[form_id]

    return make


@pytest.fixture
def make_study(tmp_path, load_study):
    """Factory: write a study folder in tmp_path and publish it; returns the loader Study."""

    def make(forms, **kwargs):
        return load_study(write_study(tmp_path / kwargs.get("study_id", "t"), forms, **kwargs))

    return make


@pytest.fixture
def ks(make_study, db, actor):
    """The kitchen-sink study "t" (visit v1: form ks; log form ev) and subject 01-001 at site 01."""
    from ecrf.capture.service import enrol_subject, save_form

    study = make_study({"ks": KITCHEN_SINK, "ev": LOG}, log_forms=("ev",))
    subject = enrol_subject(db, actor, "t", "01")

    def save(data, **kwargs):
        return save_form(db, actor, "t", subject.key, kwargs.pop("visit", "v1"), kwargs.pop("form", "ks"),
                         data, **kwargs)

    return types.SimpleNamespace(study=study, form=study.forms["ks"], subject=subject.key, save=save)
