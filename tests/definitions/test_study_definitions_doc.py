"""docs/study-definitions.md keeps to the code: its JSON examples are JSON, its expressions parse and
give the values it states, its minimal study loads, and it lists the AE variables the loader needs."""
import json
import re
from pathlib import Path

import pytest

from ecrf.definitions import load_study
from ecrf.definitions.loader import AE_REQUIRED_VARIABLES
from ecrf.rules import parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "study-definitions.md"


def _text():
    return DOC.read_text(encoding="utf-8")


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", _text(), flags=re.S)


def _as_json(block):
    """A block is a whole JSON value, or members of an object (``"key": value, ...``)."""
    block = block.strip()
    return json.loads(block if block[0] in "{[" else "{" + block + "}")


def test_every_json_example_is_json():
    blocks = _blocks("json")
    assert len(blocks) > 20
    for block in blocks:
        try:
            _as_json(block)
        except json.JSONDecodeError as exc:
            pytest.fail(f"not JSON ({exc}):\n{block}")


def _expressions(value):
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in ("calculate", "expect") and isinstance(sub, str):
                yield sub
            else:
                yield from _expressions(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _expressions(sub)


def test_every_expression_in_the_json_examples_parses():
    found = [e for block in _blocks("json") for e in _expressions(_as_json(block))]
    assert found
    for source in found:
        parse(source)


def test_stated_results_hold():
    lines = re.findall(r"^((?:years|days)_between\(.*?\))\s+→\s+(-?\d+)$", _text(), flags=re.M)
    assert len(lines) >= 5
    for source, value in lines:
        assert parse(source).evaluate({}) == int(value), source


def test_function_table_examples_parse():
    rows = re.findall(r"^\| `(\w+)\(.*?\| `([^`]+)`( → `[^`]+`)? \|$", _text(), flags=re.M)
    assert {name for name, _, _ in rows} >= {"sum", "mean", "count", "round", "abs", "if", "coalesce",
                                               "days_between", "years_between"}
    for _, example, _ in rows:
        parse(example)


def test_the_minimal_study_loads(tmp_path):
    study_block, vitals_block = _blocks("json")[:2]
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "study.json").write_text(study_block, encoding="utf-8")
    (folder / "vitals.json").write_text(vitals_block, encoding="utf-8")
    study = load_study(folder)
    assert [v.id for v in study.visits] == ["baseline", "week4"]
    assert [f.name for f in study.forms["vitals"].fields] == ["sbp", "assessed"]


def test_the_ae_variables_are_all_documented():
    documented = re.findall(r"^\| `(\w+)` \| ", _text().split("## The adverse-event log")[1], flags=re.M)
    assert tuple(documented) == AE_REQUIRED_VARIABLES
