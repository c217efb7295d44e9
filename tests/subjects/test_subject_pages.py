"""Subject pages: add a subject at an own site only, the matrix with filters, state changes."""
import pytest

from ecrf.studies import add_site


@pytest.fixture
def demo(load_study, db, actor, make_user):
    load_study("demo")
    add_site(db, actor, "demo", "01", "Odense")
    add_site(db, actor, "demo", "02", "Aarhus")
    make_user("nurse", "site_staff", "demo", sites=["01"])
    make_user("monitor", "monitor", "demo")


def test_site_staff_add_a_subject_at_their_own_site(client, login_as, demo, csrf_from):
    login_as("nurse")
    page = client.get("/studies/demo/subjects/new")
    html = page.get_data(as_text=True)
    assert 'value="01"' in html and 'value="02"' not in html
    posted = client.post("/studies/demo/subjects/new",
                         data={"site": "01", "subject": "", "csrf_token": csrf_from(page)})
    assert posted.status_code == 302 and posted.headers["Location"].endswith("/subjects/01-001")
    other = client.post("/studies/demo/subjects/new",
                        data={"site": "02", "subject": "", "csrf_token": csrf_from(page)})
    assert other.status_code == 200 and "Not a valid choice" in other.get_data(as_text=True)
    matrix = client.get("/studies/demo/subjects").get_data(as_text=True)
    assert "01-001" in matrix


def test_duplicate_or_malformed_ids_re_render_with_the_message(client, login_as, demo, csrf_from, db, actor):
    from ecrf.capture.service import enrol_subject
    enrol_subject(db, actor, "demo", "01", "01-001")
    login_as("nurse")
    page = client.get("/studies/demo/subjects/new")
    bad = client.post("/studies/demo/subjects/new",
                      data={"site": "01", "subject": "<b>x</b>", "csrf_token": csrf_from(page)})
    assert bad.status_code == 200 and "not a valid subject id" in bad.get_data(as_text=True)
    assert "<b>x</b>" not in bad.get_data(as_text=True)
    dup = client.post("/studies/demo/subjects/new",
                      data={"site": "01", "subject": "01-001", "csrf_token": csrf_from(page)})
    assert dup.status_code == 409


def test_monitors_cannot_add_subjects_and_other_sites_are_hidden(client, login_as, demo, db, actor):
    from ecrf.capture.service import enrol_subject
    enrol_subject(db, actor, "demo", "02", "02-001")
    login_as("monitor")
    assert client.get("/studies/demo/subjects/new").status_code == 403
    assert "02-001" in client.get("/studies/demo/subjects").get_data(as_text=True)


def test_matrix_filters_by_site_for_site_staff(client, login_as, demo, db, actor, csrf_from):
    from ecrf.capture.service import enrol_subject
    enrol_subject(db, actor, "demo", "02", "02-001")
    enrol_subject(db, actor, "demo", "01", "01-001")
    login_as("nurse")
    html = client.get("/studies/demo/subjects?site=02").get_data(as_text=True)
    assert "02-001" not in html and "01-001" in html  # an unknown site filter falls back to own sites
    token = csrf_from(client.get("/studies/demo/subjects/new"))
    other_site = client.post("/studies/demo/subjects/02-001/state",
                             data={"state": "withdrawn", "reason": "Other", "csrf_token": token})
    assert other_site.status_code == 404
    assert client.post("/studies/demo/subjects/01-001/state", data={"state": "withdrawn"}).status_code == 400


def test_matrix_cells_open_the_visit(client, login_as, load_study, write_study, tmp_path, db, actor,
                                     make_user):
    """A cell opens its visit's form (or, for a visit of several forms, that visit on the subject's
    page, whose row carries the anchor)."""
    from ecrf.capture.service import enrol_subject

    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    load_study(write_study(tmp_path, {"a": schema, "b": schema, "c": schema}, study_id="cells", visits=[
        {"id": "v1", "label": "Visit 1", "day": 0, "forms": ["a"]},
        {"id": "v2", "label": "Visit 2", "day": 7, "forms": ["b", "c"]}]))
    key = enrol_subject(db, actor, "cells", "01").key
    make_user("nurse", "site_staff", "cells")
    login_as("nurse")
    matrix = client.get("/studies/cells/subjects").get_data(as_text=True)
    single = f'href="/studies/cells/subjects/{key}/v1/a" aria-label="Visit 1 of {key}: not started"'
    several = f'href="/studies/cells/subjects/{key}#visit-v2" aria-label="Visit 2 of {key}: not started"'
    assert single in matrix and several in matrix
    assert client.get(f"/studies/cells/subjects/{key}/v1/a").status_code == 200
    assert 'id="visit-v2"' in client.get(f"/studies/cells/subjects/{key}").get_data(as_text=True)
