"""Pages link to what each role may use, and to nothing else."""
import pytest

from ecrf.capture.service import enrol_subject, save_form
from ecrf.studies import add_site


@pytest.fixture
def study(load_study, db, actor, make_user):
    load_study("demo")
    add_site(db, actor, "demo", "01", "Odense")
    for role in ("site_staff", "monitor", "sponsor", "admin", "data_manager"):
        make_user(role.replace("_", ""), role, "demo")
    subject = enrol_subject(db, actor, "demo", "01")
    record = save_form(db, actor, "demo", subject.key, "baseline", "vitals",
                       {"sbp": 120, "assessed": "2026-11-02"}).record
    return subject, record


@pytest.mark.parametrize("username,shown,hidden", [
    ("sitestaff", ["/subjects", "/queries", "/audit", "/sae-inbox"], ["/lock", "/admin/users"]),
    ("monitor", ["/subjects", "/queries", "/audit", "/sae-inbox"], ["/lock", "/admin/users"]),
    ("sponsor", ["/sae-inbox"], ["/subjects", "/queries", "/audit", "/lock", "/admin/users"]),
    ("datamanager", ["/subjects", "/queries", "/audit", "/lock"], ["/admin/users"]),
    ("admin", ["/admin/users", "/audit"], ["/subjects", "/sae-inbox"]),
])
def test_study_home_links_follow_the_permission_table(client, login_as, study, username, shown, hidden):
    login_as(username)
    html = client.get("/studies/demo").get_data(as_text=True)
    for part in shown:
        assert f'{part}"' in html, f"{username} should see a link to {part}"
    for part in hidden:
        assert f'{part}"' not in html, f"{username} should not see a link to {part}"


@pytest.mark.parametrize("username", ["sitestaff", "monitor"])  # the monitor's page is read-only
def test_a_saved_form_links_to_its_review_audit_trail_and_field_histories(client, login_as, study, username):
    subject, record = study
    login_as(username)
    html = client.get(f"/studies/demo/subjects/{subject.key}/baseline/vitals").get_data(as_text=True)
    assert f"/studies/demo/records/{record.id}" in html
    assert f"/studies/demo/audit/record/{record.id}" in html
    history = f"/studies/demo/audit/field?record={record.id}&amp;field=/sbp"
    assert history in html
    page = client.get(history.replace("&amp;", "&"))
    assert page.status_code == 200 and "120" in page.get_data(as_text=True)
    back = f'href="/studies/demo/subjects/{subject.key}/baseline/vitals">Back to the form'
    assert back in page.get_data(as_text=True)
