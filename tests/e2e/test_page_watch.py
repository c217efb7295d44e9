"""The watch every browser test relies on (``pages`` in conftest.py) reports what it should: a script
error, inline code the Content-Security-Policy refuses, and a script or style sheet that fails to
load; a clean page reports nothing."""
import pytest

pytestmark = pytest.mark.e2e


def test_the_watch_reports_script_errors_refused_inline_code_and_failed_loads(live_server, pages):
    base, _ = live_server(lambda session, actor: None)
    page = pages.open(base)
    page.goto("/login")
    assert pages.problems == []
    page.evaluate("""() => {
        setTimeout(() => { throw new Error('thrown by the test'); });
        const inline = document.createElement('script');
        inline.textContent = 'window.inlineRan = true';
        document.body.append(inline);
        document.body.setAttribute('style', 'color: red');
        const script = document.createElement('script');
        script.src = '/static/no-such-script.js';
        document.body.append(script);
        const sheet = document.createElement('link');
        sheet.rel = 'stylesheet';
        sheet.href = '/static/no-such-sheet.css';
        document.head.append(sheet);
    }""")
    expected = {"script error": "thrown by the test",
                "inline script": "CSP: Executing inline script violates",
                "inline style": "CSP: Applying inline style violates",
                "missing script": "404 for script",
                "missing style sheet": "no-such-sheet.css"}
    for _ in range(100):
        if all(any(text in problem for problem in pages.problems) for text in expected.values()):
            break
        page.wait_for_timeout(20)
    found = list(pages.problems)
    pages.problems.clear()  # seen here, so the fixture's own check at the end passes
    missed = [kind for kind, text in expected.items() if not any(text in problem for problem in found)]
    assert missed == [], found
    assert page.evaluate("window.inlineRan") is None
