"""Capture fixtures: studies written in tmp_path (the kitchen-sink form of tests/formgen, an AE-like
log form) published to the test database, with one enrolled subject."""
import json
import types
from pathlib import Path

import pytest

KITCHEN_SINK = json.loads((Path(__file__).parents[1] / "formgen" / "kitchen_sink.json").read_text(encoding="utf-8"))
LOG = {"type": "object", "title": "Events",
       "properties": {"term": {"type": "string", "title": "Term", "maxLength": 200},
                      "ongoing": {"enum": ["Y", "N"], "title": "Ongoing"},
                      "ended": {"type": "string", "format": "date", "title": "Ended",
                                "x-ecrf": {"show_if": {"properties": {"ongoing": {"const": "N"}},
                                                       "required": ["ongoing"]}}}},
       "required": ["term"], "x-ecrf": {"summary": ["term", "ongoing"]}}


@pytest.fixture
def make_study(tmp_path, load_study, write_study):
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
