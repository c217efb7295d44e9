"""Form-engine fixtures: study folders written in tmp_path and loaded (not stored) by the loader."""
import json
from pathlib import Path

import pytest

from ecrf.definitions import load_study

KITCHEN_SINK = json.loads((Path(__file__).parent / "kitchen_sink.json").read_text(encoding="utf-8"))


def write_study(root, forms, *, study_id="t", log_forms=(), visits=None):
    folder = Path(root) / study_id
    folder.mkdir(parents=True)
    visit_forms = [f for f in forms if f not in log_forms]
    study = {"id": study_id, "title": f"Study {study_id}",
             "sites": [{"id": "01", "name": "Site one", "timezone": "Europe/Copenhagen"}],
             "visits": visits or [{"id": "v1", "label": "Visit 1", "day": 0, "forms": visit_forms}]}
    if log_forms:
        study["log_forms"] = list(log_forms)
    (folder / "study.json").write_text(json.dumps(study), encoding="utf-8")
    for form_id, schema in forms.items():
        (folder / f"{form_id}.json").write_text(json.dumps(schema), encoding="utf-8")
    return folder


@pytest.fixture
def form_def(tmp_path):
    """Factory: the FormDef of a form schema (loaded through the real loader)."""
    counter = iter(range(1000))

    def make(schema, form_id="f"):
        folder = write_study(tmp_path / str(next(counter)), {form_id: schema})
        return load_study(folder).forms[form_id]

    return make


@pytest.fixture
def kitchen_sink(form_def):
    return form_def(KITCHEN_SINK, "ks")
