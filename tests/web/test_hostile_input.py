"""Hostile input on every route, pages and API alike: NUL characters, integers beyond the database's
range, JSON nested a thousand levels deep. Each must be a clear 4xx with a message, never a 500.

The routes come from walking ``app.url_map``, so a route added later is probed without being listed.
"""
import json
import re

import pytest
from werkzeug.routing import IntegerConverter

from ecrf import apifuzz
from ecrf.web.input_guard import MAX_DB_INT, GuardedJSONProvider, json_depth_exceeds

HUGE = (2**31, 2**63, 10**20)
#: A 2 KB body nested about 1,000 levels (Python's json gives up at about that depth).
DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"data": ' + '{"a": ' * 400 + "1" + "}" * 400 + "}"


@pytest.fixture
def seeded(app, db, actor, make_user, login_as):
    """The fuzzing seed (study, subject, AE record, token), a query on the record, and a page
    session signed in as an investigator who is also data manager and administrator."""
    from ecrf.auth import accounts
    from ecrf.review.queries import raise_query

    target = apifuzz.seed(db, actor)
    make_user("probe", "investigator", target.study)
    accounts.grant_role(db, actor, "probe", target.study, "data_manager")
    raise_query(db, actor, target.study, target.record_id, "/aeterm", "Please check")
    assert login_as("probe").status_code == 302
    return target


def _value(target, rule, name, converter):
    """A real id for each route parameter, so the probes reach the views' services."""
    if isinstance(converter, IntegerConverter):
        return target.record_id if name in ("record_id", "query_id") else target.record
    form = apifuzz.VISIT_FORM if "<visit_key>" in rule.rule else apifuzz.LOG_FORM
    by_name = {"study_key": target.study, "subject_key": target.subject, "visit_key": apifuzz.VISIT,
               "form_key": form, "number": "SAE-1", "username": "probe", "filename": "forms.js"}
    return by_name.get(name, "x")


def _routes(app):
    """(rule, method) for every route but static files."""
    return [(rule, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]


def _url(target, rule, **override):
    values = {name: override.get(name, _value(target, rule, name, conv))
              for name, conv in rule._converters.items()}
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(values[m.group(1)]), rule.rule)


def _send(client, target, method, url, **kwargs):
    headers = {"Authorization": f"Bearer {target.token}"} if url.startswith("/api/") else {}
    return client.open(url, method=method, headers=headers, **kwargs)


def _assert_clear_4xx(response, allowed=(400, 404, 405, 413, 415, 422)):
    assert response.status_code in allowed, (response.status_code, response.get_data(as_text=True)[:500])
    text = response.get_data(as_text=True)
    assert text.strip(), "a refusal says why"


def test_every_route_with_nul_in_each_path_segment_and_query(app, client, seeded):
    probed = 0
    for rule, method in _routes(app):
        for name, conv in rule._converters.items():
            if isinstance(conv, IntegerConverter):
                continue
            url = _url(seeded, rule, **{name: "a%00b"})
            response = _send(client, seeded, method, url)
            _assert_clear_4xx(response, (400,))
            # The guard refused it (not, on a page's POST, the CSRF check that would refuse it anyway).
            assert "NUL" in response.get_data(as_text=True), (method, rule.rule)
            probed += 1
        response = _send(client, seeded, method, _url(seeded, rule) + "?q=%00&site=0%001&subject=%00")
        _assert_clear_4xx(response, (400,))
        assert "NUL" in response.get_data(as_text=True), (method, rule.rule)
    assert probed > 50


def test_nul_in_a_header_is_refused(client, seeded, login_as):
    for headers in ({"User-Agent": "probe\x00"}, {"Authorization": f"Bearer {seeded.token}\x00"}):
        response = client.get(f"/api/v1/studies/{seeded.study}/subjects", headers=headers)
        assert response.status_code == 400 and "NUL" in response.get_json()["error"]
    page = client.post("/login", data={"username": "probe", "password": "x"}, headers={"User-Agent": "a\x00"})
    assert page.status_code == 400


@pytest.mark.parametrize("huge", HUGE)
def test_every_integer_path_segment_beyond_the_database_is_a_404(app, client, seeded, huge):
    probed = 0
    for rule, method in _routes(app):
        for name, conv in rule._converters.items():
            if isinstance(conv, IntegerConverter):
                response = _send(client, seeded, method, _url(seeded, rule, **{name: huge}))
                _assert_clear_4xx(response, (404,))
                probed += 1
    assert probed >= 20


@pytest.mark.parametrize("huge", [*HUGE, "1e30", "-1", "99999999999999999999999999999999999999"])
def test_every_route_with_huge_numbers_in_query_parameters_never_fails(app, client, seeded, huge):
    names = ("page", "before", "after", "record", "seq", "version", "since", "until", "q", "site", "subject")
    query = "&".join(f"{n}={huge}" for n in names)
    for rule, method in _routes(app):
        response = _send(client, seeded, method, f"{_url(seeded, rule)}?{query}")
        assert response.status_code < 500, (method, rule.rule, response.get_data(as_text=True)[:500])


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, '{"data": {"sbp": NaN}}', '{"data": {"sbp": 1e400}}',
                                  '{"site": "0\\u00001"}', '{"data": {"\\u0000": 1}}', '{"reason": "\\ud800"}'])
def test_every_write_route_refuses_hostile_json_with_400(app, client, seeded, body):
    probed = 0
    for rule, method in _routes(app):
        if method == "GET":
            continue
        response = _send(client, seeded, method, _url(seeded, rule), data=body,
                         content_type="application/json")
        _assert_clear_4xx(response, (400,))
        assert "JSON" in response.get_data(as_text=True), (method, rule.rule)  # the guard, not CSRF
        probed += 1
    assert probed > 20


def test_every_write_route_refuses_nul_in_form_fields(app, client, seeded, csrf_from):
    token = csrf_from(client.get(f"/studies/{seeded.study}/subjects/new"))
    assert token
    probed = 0
    for rule, method in _routes(app):
        if method == "GET" or rule.rule.startswith("/api/"):
            continue
        response = _send(client, seeded, method, _url(seeded, rule),
                         data={"csrf_token": token, "reason": "a\x00b", "a\x00": "x"})
        _assert_clear_4xx(response, (400,))
        assert "NUL" in response.get_data(as_text=True), (method, rule.rule)
        probed += 1
    assert probed >= 5


def test_huge_numbers_in_json_bodies_never_fail(client, seeded):
    headers = {"Authorization": f"Bearer {seeded.token}"}
    base = f"/api/v1/studies/{seeded.study}/subjects"
    for body in ({"data": {}, "version": 2**63}, {"data": {}, "version": 10**30},
                 {"site": seeded.site, "subject": 10**20}, {"data": {"aeterm": 10**30, "aesev": -(10**30)}}):
        for method, url in (("PUT", f"{base}/{seeded.subject}/forms/ae/{seeded.record}"),
                            ("PUT", f"{base}/{seeded.subject}/visits/screening/forms/vs"),
                            ("POST", f"{base}/{seeded.subject}/forms/ae"), ("POST", base)):
            response = client.open(url, method=method, json=body, headers=headers)
            assert response.status_code < 500, (method, url, body, response.get_data(as_text=True)[:300])
    stale = client.put(f"{base}/{seeded.subject}/forms/ae/{seeded.record}", headers=headers,
                       json={"data": {}, "version": 2**63, "reason": "probe"})
    assert stale.status_code == 409


def test_unknown_body_keys_are_refused(client, seeded):
    headers = {"Authorization": f"Bearer {seeded.token}"}
    response = client.post(f"/api/v1/studies/{seeded.study}/subjects", headers=headers,
                           json={"site": seeded.site, "subjet": "01-999"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"pointer": "/subjet", "message": "not a known key"}]


def test_a_405_names_the_allowed_methods(client, seeded):
    response = client.delete(f"/api/v1/studies/{seeded.study}/subjects",
                             headers={"Authorization": f"Bearer {seeded.token}"})
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST", "HEAD", "OPTIONS"}
    assert "error" in response.get_json()
    page = client.delete("/login")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]


def test_every_api_answer_is_no_store(app, client, seeded):
    for rule, method in _routes(app):
        if not rule.rule.startswith("/api/"):
            continue
        for headers in ({"Authorization": f"Bearer {seeded.token}"}, {}):
            response = client.open(_url(seeded, rule), method=method, headers=headers)
            assert response.headers.get("Cache-Control") == "no-store", (method, rule.rule)


def test_the_json_provider_limits_depth_and_numbers(app):
    provider = GuardedJSONProvider(app)
    assert provider.loads('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    for text in (DEEP, DEEP_OBJECT, "NaN", "[Infinity]", "-1e999", "[" * 100000):
        with pytest.raises(ValueError):
            provider.loads(text)
    assert not json_depth_exceeds(json.loads("[" * 64 + "]" * 64))
    assert json_depth_exceeds(json.loads("[" * 65 + "]" * 65))


def test_the_largest_id_the_database_holds_is_still_looked_up(client, seeded):
    headers = {"Authorization": f"Bearer {seeded.token}"}
    base = f"/api/v1/studies/{seeded.study}/subjects/{seeded.subject}/forms/ae"
    missing = client.get(f"{base}/{MAX_DB_INT}", headers=headers)
    assert missing.status_code == 404 and "no record" in missing.get_json()["error"]
    beyond = client.get(f"{base}/{MAX_DB_INT + 1}", headers=headers)
    assert beyond.status_code == 404 and f"ids go up to {MAX_DB_INT}" in beyond.get_json()["error"]


@pytest.mark.parametrize("value", ["99999999999999999999", str(2**31), "-9223372036854775809", "1e30", "x" * 5000])
def test_every_page_form_with_huge_values_in_each_field_never_fails(app, client, seeded, value):
    """Each page that shows a form gets it back with every field holding a huge number or text."""
    posted = 0
    for rule, method in _routes(app):
        if method != "POST" or rule.rule.startswith("/api/") or "GET" not in rule.methods:
            continue
        url = _url(seeded, rule)
        page = client.get(url)
        if page.status_code != 200:
            continue
        text = page.get_data(as_text=True)
        names = set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', text)) - {"csrf_token"}
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text)
        data = {name: value for name in names}
        data["csrf_token"] = token.group(1) if token else ""
        response = client.post(url, data=data)
        assert response.status_code < 500, (rule.rule, response.get_data(as_text=True)[:500])
        posted += 1
    assert posted >= 5
