"""Bad input around sessions: an expired session posting a form keeps what was typed, forged or
missing CSRF tokens are refused, and a stash is only ever shown to the user who typed it."""
from sqlalchemy import select

from ecrf.models import DataQuery, FormStash


def test_expired_session_posting_a_form_keeps_the_typed_values(idle_out, trial, client, login_as, csrf_from, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    page = f"/studies/revw/records/{record.id}/queries/new"
    login_as("mon")
    token = csrf_from(client.get(page))
    idle_out()
    typed = "Source document says 131 mmHg; please check"
    response = client.post(page, data={"csrf_token": token, "field": "/dbp", "text": typed})
    assert response.status_code == 302 and f"/login?next={page}" in response.headers["Location"]
    assert db.scalars(select(DataQuery)).all() == []  # nothing was saved
    stash = db.scalars(select(FormStash)).one()
    assert ["csrf_token", token] not in stash.fields  # the old token is not kept
    login = client.post("/login", data={"username": "mon", "password": "correct horse battery",
                                        "csrf_token": csrf_from(client.get("/login")), "next": page})
    assert login.headers["Location"] == page
    again = client.get(page).get_data(as_text=True)
    assert typed in again and '<option selected value="/dbp">' in again
    assert "what you typed is shown again" in again
    db.expire_all()
    assert db.scalars(select(FormStash)).all() == []  # shown once, then gone
    assert typed not in client.get(page).get_data(as_text=True)


def test_typed_values_are_not_shown_to_another_user(idle_out, trial, client, login_as, csrf_from, db, make_user):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    make_user("mon2", "monitor", "revw")
    page = f"/studies/revw/records/{record.id}/queries/new"
    login_as("mon")
    token = csrf_from(client.get(page))
    idle_out()
    client.post(page, data={"csrf_token": token, "field": "/sbp", "text": "private note"})
    login_as("mon2")
    assert "private note" not in client.get(page).get_data(as_text=True)


def test_a_post_only_action_returns_to_the_page_it_came_from(idle_out, trial, client, login_as, csrf_from):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    login_as("mon")
    review = f"/studies/revw/records/{record.id}"
    token = csrf_from(client.get(review))
    idle_out()
    response = client.post(f"{review}/verify", data={"csrf_token": token, "field": "/sbp"},
                           headers={"Referer": f"http://localhost{review}"})
    assert f"/login?next={review}" in response.headers["Location"]


def test_forged_or_missing_csrf_tokens_are_refused(trial, client, login_as, csrf_from, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    login_as("mon")
    page = f"/studies/revw/records/{record.id}/queries/new"
    data = {"field": "/sbp", "text": "?"}
    assert client.post(page, data=data).status_code == 400
    assert client.post(page, data=dict(data, csrf_token="forged." + "x" * 40)).status_code == 400
    other = client.application.test_client()  # another browser's valid token
    other_token = csrf_from(other.get("/login"))
    assert client.post(page, data=dict(data, csrf_token=other_token)).status_code == 400
    assert client.post(f"/studies/revw/records/{record.id}/verify", data={}).status_code == 400
    assert db.scalars(select(DataQuery)).all() == []


def test_next_after_a_review_action_stays_on_this_site(trial, client, login_as, csrf_from):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    login_as("mon")
    review = f"/studies/revw/records/{record.id}"
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        token = csrf_from(client.get(review))
        response = client.post(f"{review}/verify", data={"csrf_token": token, "next": target})
        assert response.status_code == 302 and response.headers["Location"] == review
