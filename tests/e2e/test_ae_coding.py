"""The AE log in a real browser: typing a CTCAE term's code leaves only that term's grades."""
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PASSWORD = "browser passphrase 1"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture
def server(new_database, tmp_path):
    """mesrix-ii on a real server in a thread, subject 01-001 and a nurse; yields the base URL."""
    from werkzeug.serving import make_server

    from ecrf import create_app
    from ecrf.actor import Actor
    from ecrf.auth import accounts
    from ecrf.capture.service import enrol_subject
    from ecrf.db import get_session
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.paths import resource

    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "e2e-secret", "DATABASE_URL": new_database(),
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        session, actor = get_session(), Actor.cli()
        publish_study(session, actor, load_study(resource("forms") / "mesrix-ii"))
        enrol_subject(session, actor, "mesrix-ii", "01")
        accounts.create_user(session, actor, "nurse", PASSWORD, must_change_password=False)
        accounts.grant_role(session, actor, "nurse", "mesrix-ii", "site_staff")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()
        app.extensions["ecrf_db"].engine.dispose()


def test_only_the_coded_terms_grades_stay_selectable(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server}/login")
            page.fill("#username", "nurse")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{server}/studies/mesrix-ii/subjects/01-001/log/ae/new")
            grade = page.locator('[data-field="aetoxgr"] input[type="radio"][value="4"]')
            expect(grade).to_be_enabled()
            page.locator('[data-field="aellt"] input').fill("10013781")  # Dry mouth: grades 1-3
            expect(grade).to_be_disabled()
            expect(page.locator('[data-field="aetoxgr"] input[type="radio"][value="3"]')).to_be_enabled()
            page.locator('[data-field="aellt"] input').fill("10028130")  # Mucositis oral: 1-5
            expect(grade).to_be_enabled()
            assert errors == []
        finally:
            browser.close()
