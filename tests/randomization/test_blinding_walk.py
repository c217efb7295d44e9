"""Every blinded role walks every page and API response for a randomized subject of a masked
study (the routes are read from ``app.url_map``, so a page added later is walked too): neither arm's
id nor its label may appear anywhere. The unblinded pharmacist, and the investigator who
emergency-unblinded the subject, do see it (the control that shows the walk can see a leak)."""
import io
import warnings
import zipfile

import pytest

from audit import RequestContext
from ecrf.actor import Actor
from ecrf.auth.accounts import create_token
from ecrf.capture import visits
from ecrf.capture.service import save_form
from ecrf.models import ROLES
from ecrf.randomization import service
from ecrf.web.exports import WEB_FORMATS
from tests.conftest import TEST_PASSWORD
from tests.randomization.conftest import ARMS

SECRETS = [a["id"] for a in ARMS] + [a["label"] for a in ARMS]
BLINDED = [r for r in ROLES if r != "pharmacist"]


@pytest.fixture
def world(app, db, actor, rz_study, enrolled, make_user):
    sid = rz_study(kits={"aardvark": ["KA-1"], "zebu": ["KZ-1"]})
    service.generate_list(db, actor, sid, 4)
    subject = enrolled(sid, "01")
    visits.set_visit_date(db, actor, sid, subject.key, "baseline", "2026-01-05")
    record = save_form(db, actor, sid, subject.key, "baseline", "vitals", {"sbp": 120}).record
    make_user("unblinder", "investigator", sid, sites=["01"])
    service.randomize(db, Actor(None, "rz-investigator", "investigator", RequestContext("page")), sid, subject.key)
    unblinder = __import__("ecrf.auth.accounts", fromlist=["get_user"]).get_user(db, "unblinder")
    service.unblind(db, Actor(unblinder.id, "unblinder", "investigator"), unblinder, sid, subject.key, "SUSAR")
    for role in ROLES:
        make_user(f"w_{role}", role, sid, sites=["01"] if role not in ("admin", "sponsor") else ())
    app.config["WTF_CSRF_ENABLED"] = False
    return sid, subject, record


def _login(app, username):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": TEST_PASSWORD})
    assert response.status_code == 302, username
    return client


def _urls(app, sid, subject, record):
    values = {"study_key": sid, "subject_key": subject.key, "visit_key": "baseline", "form_key": "vitals",
              "record": 1, "seq": 1, "record_id": record.id, "query_id": 1, "username": "w_investigator",
              "version": 1, "number": "X", "filename": "ecrf.css"}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        missing = [a for a in rule.arguments if a not in values]
        assert not missing, f"the blinding walk has no value for {missing} of {rule.rule}"
        url = rule.build({a: values[a] for a in rule.arguments}, append_unknown=False)[1]
        yield url
        if rule.endpoint in ("audit.index", "audit.export", "api.audit"):
            yield url + f"?subject={subject.key}&action=randomize"
            yield url + "?action=unblind"
        if rule.endpoint == "audit.field":
            yield url + f"?record={record.id}&field=/sbp"
        if rule.endpoint in ("exports.page_download", "api_exports.api_export"):
            for fmt in WEB_FORMATS:
                yield url + f"?format={fmt}"


def _leaks(text):
    lowered = text.lower()
    return [s for s in SECRETS if s.lower() in lowered]


def _text(response):
    """What a response shows: its text, or the text of every file in a ZIP download (an export)."""
    body = response.get_data()
    if body[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    return body.decode("utf-8", "replace")


@pytest.mark.parametrize("role", BLINDED)
def test_a_blinded_role_sees_no_arm_anywhere(world, app, db, actor, role):
    warnings.simplefilter("ignore", DeprecationWarning)
    sid, subject, record = world
    client = _login(app, f"w_{role}")
    token = create_token(db, actor, f"w_{role}")
    walked, allowed = 0, 0
    for url in _urls(app, sid, subject, record):
        headers = {"Authorization": f"Bearer {token}"} if url.startswith("/api/") else {}
        response = client.get(url, headers=headers)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        leaked = _leaks(_text(response))
        assert not leaked, f"{role} sees {leaked} at {url}"
        walked += 1
        allowed += response.status_code == 200
    assert walked > 40 and allowed > 5


def test_the_randomization_event_shows_masked_to_a_blinded_reader(world, app):
    sid, subject, _ = world
    page = _login(app, "w_monitor").get(f"/studies/{sid}/audit?subject={subject.key}&action=randomize")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "randomize" in text and "(blinded)" in text
    assert not _leaks(text)
    unblinded = _login(app, "w_pharmacist").get(f"/studies/{sid}/audit?subject={subject.key}")
    assert unblinded.status_code in (403, 404)  # the pharmacist reads no audit trail at all


def test_the_controls_see_the_arm(world, app, db, actor):
    sid, subject, _ = world
    pharmacist = _login(app, "w_pharmacist")
    page = pharmacist.get(f"/studies/{sid}/pharmacy").get_data(as_text=True)
    assert _leaks(page) and subject.key in page and ("KA-1" in page or "KZ-1" in page)
    assert _leaks(pharmacist.get(f"/studies/{sid}/randomization/balance").get_data(as_text=True))
    unblinder = _login(app, "unblinder")
    assert _leaks(unblinder.get(f"/studies/{sid}/subjects/{subject.key}").get_data(as_text=True))
    token = create_token(db, actor, "unblinder")
    body = unblinder.get(f"/api/v1/studies/{sid}/subjects/{subject.key}",
                         headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["randomization"]["arm"] == subject.arm
