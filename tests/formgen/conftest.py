"""Form-engine fixtures: study folders written in tmp_path and loaded (not stored) by the loader."""
import json
from pathlib import Path

import pytest

KITCHEN_SINK = json.loads((Path(__file__).parent / "kitchen_sink.json").read_text(encoding="utf-8"))


@pytest.fixture
def kitchen_sink(form_def):
    return form_def(KITCHEN_SINK, "ks")
