"""The form page in a real browser (Debian's chromium through Playwright) against a real server and a
fresh committed database: a field appears and disappears as the user answers, a calculation preview
updates as they type, rows are added without a page load, and the keyboard alone saves the form."""
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery"
KITCHEN_SINK = json.loads((Path(__file__).parents[1] / "formgen" / "kitchen_sink.json").read_text("utf-8"))

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture
def server(new_database, tmp_path):
    """A real server in a thread on 127.0.0.1, a fresh database holding study "t", subject 01-001
    and a nurse; yields (base URL, app)."""
    from werkzeug.serving import make_server

    from ecrf import create_app
    from ecrf.actor import Actor
    from ecrf.auth import accounts
    from ecrf.capture.service import enrol_subject
    from ecrf.db import get_session
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study

    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({
        "id": "t", "title": "Browser study",
        "sites": [{"id": "01", "name": "Site one", "timezone": "Europe/Copenhagen"}],
        "visits": [{"id": "v1", "label": "Visit 1", "day": 0, "forms": ["ks"]}]}), encoding="utf-8")
    (folder / "ks.json").write_text(json.dumps(KITCHEN_SINK), encoding="utf-8")
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "e2e-secret", "DATABASE_URL": new_database(),
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        session, actor = get_session(), Actor.cli()
        publish_study(session, actor, load_study(folder))
        enrol_subject(session, actor, "t", "01")
        accounts.create_user(session, actor, "nurse", PASSWORD, must_change_password=False)
        accounts.grant_role(session, actor, "nurse", "t", "site_staff")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", app
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()
        app.extensions["ecrf_db"].engine.dispose()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _open_form(browser, base):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # script errors only (the browser's own request for /favicon.ico is a 404 it logs too)
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and not msg.text.startswith("Failed to load resource") else None)
    page.goto(f"{base}/login")
    page.fill("#username", "nurse")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/studies/t/subjects/01-001/v1/ks")
    return page, errors


def test_fields_appear_and_calculations_update_as_the_user_types(server, browser):
    from playwright.sync_api import expect

    base, app = server
    page, errors = _open_form(browser, base)

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
    assert errors == []

    from ecrf.db import get_session
    from ecrf.models import FormRecord

    with app.app_context():
        record = get_session().scalar(select(FormRecord))
        assert record.data == {"smoker": "Y", "packs": 2, "visdat": "2024-03-15", "weight": 95.5, "height": 180,
                               "bmi": 29.5, "code": "AB12", "site_code": "S1",
                               "tubes": [{"tube": "EDTA", "volume": 1.5}, {"tube": "serum", "volume": 2}],
                               "total": 3.5}
    page.close()


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


def test_the_browser_mirror_answers_as_the_server_does(server, browser):
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
    page, errors = _open_form(browser, base)
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
    assert errors == []
    page.close()
