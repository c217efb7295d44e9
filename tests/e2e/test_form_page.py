"""The form page in a real browser (Debian's chromium through Playwright) against a real server and a
fresh committed database: a field appears and disappears as the user answers, a calculation preview
updates as they type, rows are added without a page load, and the keyboard alone saves the form."""
import json
from pathlib import Path

import pytest
from sqlalchemy import select

KITCHEN_SINK = json.loads((Path(__file__).parents[1] / "formgen" / "kitchen_sink.json").read_text("utf-8"))

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(live_server, add_user, write_study, tmp_path):
    """Study "t" (the kitchen-sink form at visit v1), subject 01-001 and a nurse; (base URL, app)."""
    from ecrf.capture.service import enrol_subject
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study

    folder = write_study(tmp_path, {"ks": KITCHEN_SINK},
                         sites=[{"id": "01", "name": "Site one", "timezone": "Europe/Copenhagen"}])

    def setup(session, actor):
        publish_study(session, actor, load_study(folder))
        enrol_subject(session, actor, "t", "01")
        add_user(session, actor, "nurse", "site_staff", "t")

    return live_server(setup)


def _open_form(pages, base):
    page = pages.open(base, "nurse")
    page.goto("/studies/t/subjects/01-001/v1/ks")
    return page


def test_fields_appear_and_calculations_update_as_the_user_types(server, pages):
    from playwright.sync_api import expect

    base, app = server
    page = _open_form(pages, base)

    packs = page.locator("#field-packs")
    expect(packs).to_be_hidden()
    expect(page.locator("#packs")).to_be_disabled()
    page.check("#smoker-0")                                  # "Smoker: Yes" -> packs appears
    expect(packs).to_be_visible()
    expect(page.locator("#packs")).to_be_enabled()
    page.fill("#packs", "2")
    page.check("#smoker-1")                                  # "No" -> gone again, without a page load
    expect(packs).to_be_hidden()
    page.check("#smoker-0")
    expect(page.locator("#packs")).to_have_value("2")       # what was typed is still there

    bmi = page.locator("#bmi-output")
    expect(bmi).to_have_text("—")
    page.fill("#weight", "70")
    page.fill("#height", "175")
    expect(bmi).to_have_text("22.9 kg/m²")                   # 70 / 1.75² = 22.857
    page.fill("#weight", "95,5")
    page.fill("#height", "180")
    expect(bmi).to_have_text("29.5 kg/m²")

    page.check("#tubes-0-tube-0")                            # EDTA
    page.fill("#tubes-0-volume", "1.5")
    page.click("text=Add a row to Samples")                  # no page load: a row is copied in
    expect(page.locator("#tubes-1-tube-0")).to_be_focused()
    page.check("#tubes-1-tube-1")                            # serum
    page.fill("#tubes-1-volume", "2")
    expect(page.locator("#total-output")).to_have_text("3.5")

    page.fill("#visdat", "2024-03-15")
    page.locator("#code").focus()
    page.keyboard.type("AB12")
    page.keyboard.press("Enter")                             # the keyboard alone saves a draft
    page.wait_for_url(f"{base}/studies/t/subjects/01-001/v1/ks")
    expect(page.locator(".flashes")).to_contain_text("Saved as a draft.")

    from ecrf.db import get_session
    from ecrf.models import FormRecord

    with app.app_context():
        record = get_session().scalar(select(FormRecord))
        assert record.data == {"smoker": "Y", "packs": 2, "visdat": "2024-03-15", "weight": 95.5, "height": 180,
                               "bmi": 29.5, "code": "AB12", "site_code": "S1",
                               "tubes": [{"tube": "EDTA", "volume": 1.5}, {"tube": "serum", "volume": 2}],
                               "total": 3.5}


def _samples(layout, rng):
    """A few documents for a form: each field present with some probability, plausible values."""
    for _ in range(6):
        doc = {}
        for spec in layout.fields:
            if spec.calculate is not None or rng.random() < 0.3:
                continue
            schema = spec.schema
            if spec.choices:
                doc[spec.name] = rng.choice(spec.choices).value
            elif spec.kind in ("integer", "number"):
                low, high = schema.get("minimum", 0), schema.get("maximum", 100)
                value = rng.uniform(low, high)
                doc[spec.name] = int(value) if spec.kind == "integer" else round(value, rng.choice([0, 1, 3]))
            elif spec.kind in ("date", "datetime"):
                doc[spec.name] = f"20{rng.randint(10, 30)}-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
            elif spec.kind == "group":
                doc[spec.name] = [{c.name: (rng.choice(c.choices).value if c.choices else rng.randint(0, 50))
                                   for c in spec.columns if rng.random() < 0.7} for _ in range(rng.randint(1, 3))]
        yield doc


def test_the_browser_mirror_answers_as_the_server_does(server, pages):
    """Every calculation and show_if condition of the reference studies, evaluated by forms.js and
    by the server on the same documents, gives the same answer."""
    import random

    import jsonschema

    from ecrf.definitions import load_study
    from ecrf.definitions.model import thaw
    from ecrf.formgen import layout_for
    from ecrf.paths import resource
    from ecrf.rules import parse

    base, _ = server
    page = _open_form(pages, base)
    rng = random.Random(20261123)
    calcs, conditions = [], []
    for folder in sorted(resource("forms").iterdir()):
        if not (folder / "study.json").is_file():
            continue
        for form_def in load_study(folder).forms.values():
            layout = layout_for(form_def)
            for doc in _samples(layout, rng):
                for spec in layout.fields:
                    if spec.calculate is not None:
                        calcs.append((spec.calculate.tree, doc, parse(spec.calculate.source).evaluate(doc)))
                    if spec.show_if is not None:
                        condition = thaw(spec.show_if)
                        conditions.append((condition, doc, jsonschema.Draft202012Validator(condition).is_valid(doc)))
    assert len(calcs) > 200 and len(conditions) > 200
    got = page.evaluate("""([calcs, conditions]) => [
        calcs.map(([tree, doc]) => window.ecrfForms.evaluate(tree, doc)),
        conditions.map(([condition, doc]) => window.ecrfForms.valid(condition, doc))]""",
                        [[[t, d] for t, d, _ in calcs], [[c, d] for c, d, _ in conditions]])
    for (tree, doc, expected), value in zip(calcs, got[0], strict=True):
        if isinstance(expected, float) or isinstance(value, float):
            assert value is not None and abs(value - expected) <= 1e-9 * max(1, abs(expected)), (tree, doc)
        else:
            assert value == expected, (tree, doc, value, expected)
    assert got[1] == [expected for _, _, expected in conditions]
