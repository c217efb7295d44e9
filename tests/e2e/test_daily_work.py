"""The daily work of site staff, monitors and administrators, in a real browser: a subject added and
a visit form filled from the subject matrix; a correction that needs a reason and meets a concurrent
save; a field's history, the study's audit trail and the administrators' account events.

Study "t" has two sites (01, 02), subject ids of the pattern ``NN-NNN`` and the reference demo study's
vital signs form at two visits. Each test starts its own server on a fresh database."""
import json
import re

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.e2e

ID_PATTERN = "^[0-9]{2}-[0-9]{3}$"
FORM = "/studies/t/subjects/{}/v1/vitals"


@pytest.fixture
def serve_study(live_server, write_study, tmp_path):
    """``serve_study(setup, **settings)``: study "t" published, then ``setup(session, actor)``;
    (base URL, app) of its server."""
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.paths import resource

    vitals = json.loads((resource("forms") / "demo" / "vitals.json").read_text("utf-8"))
    folder = write_study(tmp_path, {"vitals": vitals},
                         visits=[{"id": "v1", "label": "Visit 1", "day": 0, "forms": ["vitals"]},
                                 {"id": "v2", "label": "Visit 2", "day": 28, "forms": ["vitals"]}],
                         subjects={"id_template": "{site}-{n:03}", "id_pattern": ID_PATTERN})

    def start(setup, **settings):
        def publish_then_setup(session, actor):
            publish_study(session, actor, load_study(folder))
            setup(session, actor)

        return live_server(publish_then_setup, **settings)

    return start


def _record(app, subject_key):
    """The stored vital signs record of a subject at visit 1 (read outside the browser)."""
    from ecrf.db import get_session
    from ecrf.models import FormRecord, Subject

    with app.app_context():
        return get_session().scalar(select(FormRecord).join(Subject, Subject.id == FormRecord.subject_id)
                                    .where(Subject.key == subject_key, FormRecord.visit_key == "v1"))


def _matrix_cells(page, subject_key):
    """The visit cells (status classes and text) of a subject's row in the subject matrix."""
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=subject_key, exact=True))
    return row.locator("td[class*='status-']")


def test_site_staff_adds_a_subject_and_completes_a_visit_form_from_the_matrix(serve_study, add_user, pages):
    from playwright.sync_api import expect

    from ecrf.capture.service import enrol_subject

    def setup(session, actor):
        enrol_subject(session, actor, "t", "01")     # 01-001
        enrol_subject(session, actor, "t", "02")     # 02-001, at a site the nurse does not work at
        add_user(session, actor, "nurse", "site_staff", "t", ["01"])

    base, app = serve_study(setup)
    page = pages.open(base, "nurse")
    page.get_by_role("link", name="Study t").click()
    page.get_by_role("link", name="Subjects").click()
    expect(page.get_by_role("heading", name="Subjects")).to_be_visible()
    expect(page.get_by_role("rowheader", name="01-001")).to_be_visible()
    expect(page.get_by_role("rowheader", name="02-001")).to_have_count(0)

    page.get_by_role("link", name="Add a subject").click()
    site = page.get_by_label("Site")
    expect(site.locator("option")).to_have_text(["01 Site one"])   # only the nurse's own site
    page.get_by_label("Subject id").fill("1-2")
    page.get_by_role("button", name="Add subject").click()
    expect(page.locator("#subject-errors")).to_have_text("does not follow the study's pattern")
    expect(page.get_by_label("Subject id")).to_have_value("1-2")
    page.get_by_label("Subject id").fill("")                        # empty: the study's template
    page.get_by_role("button", name="Add subject").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Subject "))).to_be_visible()
    subject_key = page.get_by_role("heading", name=re.compile(r"^Subject ")).inner_text().removeprefix("Subject ")
    assert re.fullmatch(ID_PATTERN, subject_key) and subject_key.startswith("01-") and subject_key != "01-001"
    expect(page.locator(".flashes")).to_contain_text(f"Subject {subject_key} added (enrolled).")

    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Subjects").click()
    expect(_matrix_cells(page, subject_key).first).to_have_class(re.compile(r"\bstatus-not_started\b"))
    page.get_by_role("link", name=subject_key, exact=True).click()
    page.get_by_role("row", name=re.compile("^Visit 1")).get_by_role("link", name="Vital signs").click()
    assert page.url == f"{base}{FORM.format(subject_key)}"

    page.get_by_label("Systolic BP").fill("118")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flashes")).to_have_text("Saved as a draft.")
    expect(page.locator(".meta")).to_contain_text("status draft")

    page.get_by_role("button", name="Mark complete").click()        # the date assessed is required
    expect(page.locator("#assessed-errors")).to_be_visible()
    expect(page.get_by_label("Systolic BP")).to_have_value("118")
    page.get_by_label("Date assessed").fill("2024-03-15")
    page.get_by_role("button", name="Mark complete").click()
    expect(page.locator(".flashes")).to_have_text("Saved as complete.")

    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Subjects").click()
    cells = _matrix_cells(page, subject_key)
    expect(cells.nth(0)).to_have_class(re.compile(r"\bstatus-complete\b"))
    expect(cells.nth(0)).to_contain_text("complete")
    expect(cells.nth(1)).to_have_class(re.compile(r"\bstatus-not_started\b"))
    expect(_matrix_cells(page, "01-001").nth(0)).to_have_class(re.compile(r"\bstatus-not_started\b"))
    record = _record(app, subject_key)
    assert (record.status, record.data) == ("complete", {"sbp": 118, "assessed": "2024-03-15"})


def test_a_correction_needs_a_reason_and_a_concurrent_save_keeps_both_values(serve_study, add_user, pages):
    from playwright.sync_api import expect

    from ecrf.capture.service import enrol_subject, save_form

    def setup(session, actor):
        enrol_subject(session, actor, "t", "01")
        save_form(session, actor, "t", "01-001", "v1", "vitals", {"sbp": 120, "assessed": "2024-03-15"},
                  complete=True, expected_version=0)
        add_user(session, actor, "nurse", "site_staff", "t", ["01"])
        add_user(session, actor, "doctor", "investigator", "t")

    base, app = serve_study(setup)
    nurse, doctor = pages.open(base, "nurse"), pages.open(base, "doctor")
    nurse.goto(FORM.format("01-001"))
    doctor.goto(FORM.format("01-001"))                    # both start from version 1 (sbp 120)

    nurse.get_by_label("Systolic BP").fill("125")
    nurse.get_by_role("button", name="Mark complete").click()
    expect(nurse.locator("#ecrf-reason-errors")).to_contain_text("give a reason")  # refused, at the field
    expect(nurse.locator("#ecrf-error-summary")).to_contain_text("nothing was saved")
    expect(nurse.get_by_label("Systolic BP")).to_have_value("125")       # what was typed is kept
    assert _record(app, "01-001").data["sbp"] == 120
    nurse.get_by_label("Reason", exact=True).select_option("Transcription error from source")
    nurse.get_by_label("Details").fill("read 125 on the source sheet")
    nurse.get_by_role("button", name="Mark complete").click()
    expect(nurse.locator(".flashes")).to_have_text("Saved as complete.")

    doctor.get_by_label("Systolic BP").fill("130")
    doctor.get_by_label("Reason", exact=True).select_option("Data entry error")
    doctor.get_by_label("Details").fill("second reading")
    doctor.get_by_role("button", name="Mark complete").click()
    expect(doctor.locator("#ecrf-conflict")).to_be_visible()            # the nurse saved meanwhile
    expect(doctor.get_by_label("Systolic BP")).to_have_value("130")      # mine, in the box
    expect(doctor.locator("#sbp-theirs")).to_contain_text("125")         # theirs, under it
    expect(doctor.get_by_label("Details")).to_have_value("second reading")
    expect(doctor.get_by_label("Reason", exact=True)).to_have_value("Data entry error")
    assert _record(app, "01-001").data["sbp"] == 125
    doctor.get_by_role("button", name="Mark complete").click()          # keep what the boxes hold
    expect(doctor.locator(".flashes")).to_have_text("Saved as complete.")
    expect(doctor.get_by_label("Systolic BP")).to_have_value("130")
    record = _record(app, "01-001")
    assert (record.version, record.data["sbp"]) == (3, 130)


def test_a_monitor_reads_a_fields_history_and_filters_the_audit_trail_by_subject(serve_study, add_user, pages):
    from playwright.sync_api import expect

    from ecrf.capture.service import enrol_subject, save_form

    def setup(session, actor):
        for _ in range(2):
            enrol_subject(session, actor, "t", "01")
        save_form(session, actor, "t", "01-001", "v1", "vitals", {"sbp": 120, "assessed": "2024-03-15"},
                  complete=True, expected_version=0)
        save_form(session, actor, "t", "01-001", "v1", "vitals", {"sbp": 125, "assessed": "2024-03-15"},
                  complete=True, expected_version=1, reason="Transcription error from source: sheet 2")
        save_form(session, actor, "t", "01-002", "v1", "vitals", {"sbp": 140, "assessed": "2024-03-16"},
                  complete=True, expected_version=0)
        add_user(session, actor, "monitor", "monitor", "t")

    base, _ = serve_study(setup)
    page = pages.open(base, "monitor")
    page.goto(FORM.format("01-001"))
    page.get_by_role("link", name="History of Systolic BP").click()
    expect(page.get_by_role("heading", name="History of Systolic BP")).to_be_visible()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(2)                                        # oldest first
    expect(rows.nth(0).locator("td").nth(5)).to_have_text("—")
    expect(rows.nth(0).locator("td").nth(6)).to_have_text("120")
    expect(rows.nth(1).locator("td").nth(5)).to_have_text("120")
    expect(rows.nth(1).locator("td").nth(6)).to_have_text("125")
    expect(rows.nth(1).locator("td").nth(7)).to_have_text("Transcription error from source: sheet 2")

    page.get_by_role("link", name="ecrf").click()
    page.get_by_role("link", name="Study t").click()
    page.get_by_role("link", name="Audit trail").click()
    where = page.locator("table.audit tbody tr td:nth-child(5)")
    expect(where.filter(has_text="01-001")).not_to_have_count(0)
    page.get_by_label("Subject").fill("01-002")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_label("Subject")).to_have_value("01-002")
    expect(where.filter(has_text="01-002")).not_to_have_count(0)
    assert where.count() == where.filter(has_text="01-002").count()    # no other subject's events


def test_an_administrator_sees_the_account_events_of_their_studys_users_only(serve_study, add_user, pages):
    from playwright.sync_api import expect

    from audit import Action
    from ecrf import audit_view
    from ecrf.db import get_session
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.paths import resource

    def setup(session, actor):
        publish_study(session, actor, load_study(resource("forms") / "demo"))
        add_user(session, actor, "admin", "admin", "t")
        add_user(session, actor, "nurse", "site_staff", "t")
        add_user(session, actor, "stranger", "site_staff", "demo")       # none of the admin's studies

    base, app = serve_study(setup, LOCKOUT_ATTEMPTS=2)
    visitor = pages.open(base)
    for username in ("nurse", "nurse", "stranger"):
        pages.sign_in(visitor, username, "not the password")
        expect(visitor.locator("#password-errors")).to_contain_text("wrong password")
    pages.sign_in(visitor, "nurse")                                      # locked after two failures
    expect(visitor.locator("#password-errors")).to_contain_text("locked")
    with app.app_context():                                              # all written, whoever sees them
        everything = audit_view.query_events(get_session(), audit_view.operator_account_scope()).events
    assert {(e.actor_name, e.action) for e in everything} >= {
        ("nurse", Action.LOGIN_FAILED), ("nurse", Action.LOCKOUT), ("stranger", Action.LOGIN_FAILED)}

    admin = pages.open(base, "admin")
    admin.get_by_role("link", name="Users").click()
    admin.get_by_label("Username").fill("newcomer")
    admin.get_by_label("Full name").fill("New Comer")
    admin.get_by_label("First password").fill("a first passphrase 9")
    admin.get_by_role("button", name="Create").click()
    expect(admin.locator(".flashes")).to_contain_text("User newcomer created")
    admin.get_by_role("link", name="Account events").click()
    rows = admin.locator("table.audit tbody tr")
    users, actions = rows.locator("td:nth-child(3)"), rows.locator("td:nth-child(4)")

    def events(user, action):
        return rows.filter(has=admin.locator("td:nth-child(3)", has_text=user)).filter(
            has=admin.locator("td:nth-child(4)", has_text=action))

    expect(events("nurse", "lockout")).to_have_count(1)
    expect(events("nurse", "login failed")).to_have_count(3)
    expect(events("admin", "user").filter(has_text="newcomer")).not_to_have_count(0)
    expect(users.filter(has_text="stranger")).to_have_count(0)

    admin.get_by_label("Action").select_option("login_failed")
    admin.get_by_role("button", name="Filter").click()
    expect(actions).to_have_text(["login failed"] * 3)                  # the nurse's; never the stranger's
    expect(users).to_have_text(["nurse"] * 3)
