"""The AE log in a real browser: typing a CTCAE term's code leaves only that term's grades."""
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def base(live_server, add_user):
    """mesrix-ii with subject 01-001 and a nurse; the server's base URL."""
    from ecrf.capture.service import enrol_subject
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.paths import resource

    def setup(session, actor):
        publish_study(session, actor, load_study(resource("forms") / "mesrix-ii"))
        enrol_subject(session, actor, "mesrix-ii", "01")
        add_user(session, actor, "nurse", "site_staff", "mesrix-ii")

    return live_server(setup)[0]


def test_only_the_coded_terms_grades_stay_selectable(base, pages):
    from playwright.sync_api import expect

    page = pages.open(base, "nurse")
    page.goto("/studies/mesrix-ii/subjects/01-001/log/ae/new")
    grade = page.locator('[data-field="aetoxgr"] input[type="radio"][value="4"]')
    expect(grade).to_be_enabled()
    page.locator('[data-field="aellt"] input').fill("10013781")  # Dry mouth: grades 1-3
    expect(grade).to_be_disabled()
    expect(page.locator('[data-field="aetoxgr"] input[type="radio"][value="3"]')).to_be_enabled()
    page.locator('[data-field="aellt"] input').fill("10028130")  # Mucositis oral: 1-5
    expect(grade).to_be_enabled()
