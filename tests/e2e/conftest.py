"""Browser tests: Debian's chromium driven by Playwright against a real server (a thread on 127.0.0.1)
on a fresh committed database.

Every page a test opens through ``pages`` is watched, and the test fails at its end when any of them
had a script error, a console error, a message about the Content-Security-Policy (a refused inline
script or style, say), or a failed request for a script, style sheet or image. Pages answered with
an error status on purpose (a refused save is 422, a stale one 409, a failed sign-in 401) are the
tests' own business; only the browser's request for /favicon.ico is ignored outright.
"""
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
#: Every user the tests create signs in with this.
PASSWORD = "browser passphrase 1"


@pytest.fixture
def live_server(new_database, tmp_path):
    """Factory: ``live_server(setup, **settings)`` builds the app on a fresh committed database, runs
    ``setup(session, actor)`` inside it (publish a study, enrol subjects, add users), serves it from a
    thread on 127.0.0.1 and returns (base URL, app). The servers stop when the test ends."""
    from werkzeug.serving import make_server

    from ecrf import create_app
    from ecrf.actor import Actor
    from ecrf.db import get_session

    running = []

    def start(setup, **settings):
        app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "e2e-secret", "DATABASE_URL": new_database(),
                          "INSTANCE_PATH": str(tmp_path / "instance"), **settings})
        with app.app_context():
            setup(get_session(), Actor.cli())
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        # a short poll: shutdown() waits for the loop to look, half a second by default
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((httpd, thread, app))
        return f"http://127.0.0.1:{httpd.server_port}", app

    yield start
    for httpd, thread, app in running:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()
        app.extensions["ecrf_db"].engine.dispose()


@pytest.fixture
def add_user():
    """``add_user(session, actor, username, role=None, study=None, sites=())``: a user who signs in
    with PASSWORD at once (no forced change), holding ``role`` when given."""
    from ecrf.auth import accounts

    def add(session, actor, username, role=None, study=None, sites=()):
        accounts.create_user(session, actor, username, PASSWORD, name=username.title(), must_change_password=False)
        if role:
            accounts.grant_role(session, actor, username, study, role, sites)

    return add


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Pages:
    """Opens watched pages, each in a browser context of its own (its own cookies: one user, or one
    tab of a user who signs in again), and collects what went wrong on any of them."""

    def __init__(self, browser):
        self.browser = browser
        self.contexts = []
        self.problems = []

    def open(self, base_url, username=None, password=PASSWORD):
        """A new page on ``base_url`` (``page.goto("/path")`` is relative to it), signed in as
        ``username`` through the sign-in form when given."""
        context = self.browser.new_context(base_url=base_url)
        context.set_default_timeout(10_000)  # a missing element fails in seconds, not half a minute
        self.contexts.append(context)
        page = context.new_page()
        self.watch(page)
        if username is not None:
            self.sign_in(page, username, password)
            assert "/login" not in page.url, f"{username} could not sign in"
        return page

    @staticmethod
    def sign_in(page, username, password=PASSWORD):
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()

    def watch(self, page):
        def console(message):
            text = message.text
            if "Content Security Policy" in text:
                self.problems.append(f"{page.url}: CSP: {text}")
            elif message.type == "error" and not text.startswith("Failed to load resource"):
                # a failed load is reported by its response below, where its URL and type are known
                self.problems.append(f"{page.url}: console error: {text}")

        def response(resp):
            if (resp.status >= 400 and resp.request.resource_type != "document"
                    and not resp.url.endswith("/favicon.ico")):
                self.problems.append(f"{page.url}: {resp.status} for {resp.request.resource_type} {resp.url}")

        page.on("console", console)
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: script error: {exc}"))
        page.on("response", response)

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser):
    """Watched pages (see ``Pages``); the test fails if any of them had a problem."""
    opened = Pages(browser)
    try:
        yield opened
    finally:
        opened.close()
    assert opened.problems == [], "problems on the pages visited:\n" + "\n".join(opened.problems)
