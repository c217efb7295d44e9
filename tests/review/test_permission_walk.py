"""Every route × every method × every role × own site / other site, against the permission table.

The walk reads ``app.url_map``, so a route added later is walked too, without being listed here.
Each walker holds one role at site 01 only (plus one user with no role at all). For every request:

* anonymous: refused (a redirect to the sign-in page, or 401 from the API);
* the route must ask the permission table (``ecrf.auth.permissions`` is instrumented) before it
  shows anything (a 404 shows nothing), unless it is in the short list of public or sign-in-only
  routes below; a 403 must be the table's answer;
* an object of site 02 (the other site) answers 404 whatever the role, so ids do not leak (or the
  403 the role also gets at its own site, a refusal that does not depend on the object);
* an object of site 01 answers as the table says for the route's action: allowed (anything but
  401/403/404 and 5xx), or 403;
* whatever a route asked, its answer agrees with what the table answered it.

A route whose action is known here (``ACTIONS``) is also checked role by role against
``PERMISSIONS`` directly. A route with an argument the walk has no sample value for fails the walk
until one is added to ``sample_value``.
"""
import dataclasses
import json
import warnings

import pytest

from ecrf.auth import permissions
from ecrf.auth.accounts import create_token
from ecrf.auth.permissions import PERMISSIONS, STUDY_WIDE_ACTIONS
from ecrf.models import ROLES

#: Routes anyone may call.
PUBLIC = {"auth.login", "static", "api.openapi"}
#: Routes any signed-in user may call, about their own account and no study (signing out, here or
#: everywhere, is not walked: it would end the walker's session; tests/web/test_login.py and
#: tests/auth/test_server_sessions.py cover them).
SIGNED_IN = {"studies.index", "auth.change_password", "auth.logout", "auth.account",
             "auth.sign_out_everywhere"}

#: endpoint -> action, or {method: action}: the permission each route must ask for.
ACTIONS = {
    "studies.home": "study.view",
    "studies.subjects": "subject.view",
    "subjects.enrol": "subject.enrol",
    "subjects.change_state": "subject.state",
    "subjects.visit_date": "form.edit",
    "subjects.unscheduled": "form.edit",
    "api.list_subjects": "subject.view",
    "api_randomization.subject": "subject.view",
    "api_randomization.randomize": "subject.randomize",
    "api_randomization.unblind": "subject.unblind",
    "api_randomization.balance": "randomization.balance",
    "randomization.randomize": "subject.randomize",
    "randomization.unblind": "subject.unblind",
    "randomization.pharmacy": "randomization.pharmacy",
    "randomization.balance": "randomization.balance",
    "api.create_subject": "subject.enrol",
    "api.visit_form": {"GET": "form.view", "PUT": "form.edit"},
    "api.log_form": {"GET": "form.view", "POST": "form.edit"},
    "api.log_record": {"GET": "form.view", "PUT": "form.edit"},
    "admin.users": "users.manage",
    "admin.user": "users.manage",
    "admin.grant": "users.manage",
    "admin.revoke": "users.manage",
    "admin.deactivate": "users.manage",
    "review.query_list": "query.view",
    "review.query_thread": "query.view",
    "review.answer_query": "query.answer",
    "review.close_query": "query.close",
    "review.reopen_query": "query.close",
    "review.raise_query": "query.raise",
    "review.record_review": "form.view",
    "review.verify_record": "form.verify",
    "review.sign_record": "form.sign",
    "review.sign_visit": "form.sign",
    "review.sign_casebook": "form.sign",
    "review.lock_record": "form.lock",
    "review.unlock_record": "form.lock",
    "review.lock_subject": "form.lock",
    "review.unlock_subject": "form.lock",
    "review.lock_study": "study.lock",
    "review.unlock_study": "study.lock",
    "review.subject_review": "form.view",
    "exports.page": "export",
    "exports.page_download": "export",
    "api_exports.api_export": "export",
    "imports.data": "data.import",
}

DENIED = {401, 403, 404}


@dataclasses.dataclass
class Objects:
    """Sample values for URL arguments: the same kinds of object at site 01 and at site 02."""

    subject: str
    site: str
    record_id: int
    query_id: int


def sample_value(name, arguments, objects):
    """The value of URL argument ``name`` for an object of ``objects``' site."""
    values = {
        "study_key": "revw", "subject_key": objects.subject, "visit_key": "baseline",
        # a visit form where the route names a visit, else the log form
        "form_key": "vitals" if "visit_key" in arguments else "cm",
        "record": 1, "seq": 1, "record_id": objects.record_id, "query_id": objects.query_id,
        "username": "target", "version": 1,
        # The walk's study has no safety section, so no SAE report: routes about one answer 404 to
        # everyone (tests/reports walks them with reports).
        "number": "REVW-SAE-000",
    }
    if name not in values:
        pytest.fail(f"the permission walk has no sample value for URL argument {name!r}: add one to "
                    f"sample_value in {__file__}")
    return values[name]


class Recorder:
    """Wraps the permission functions to record what each request asked and was answered."""

    def __init__(self, monkeypatch):
        self.asked = []
        self.refused = []
        original_role, original_sites = permissions.granting_role, permissions.visible_site_ids
        original_where, original_require = permissions.studies_where, permissions.require

        def granting_role(session, user, action, study, site=None):
            role = original_role(session, user, action, study, site)
            self.asked.append((action, role))
            return role

        def visible_site_ids(session, user, action, study):
            ids = original_sites(session, user, action, study)
            # Limited to some sites: a route may rightly answer 404 for an object elsewhere.
            self.asked.append((action, "all sites" if ids is None else None))
            return ids

        def studies_where(session, user, action):
            ids = original_where(session, user, action)
            self.asked.append((action, "studies" if ids else None))
            return ids

        def require(session, user, action, study, site=None):
            try:
                return original_require(session, user, action, study, site)
            except Exception as exc:
                self.refused.append((action, exc.status))
                raise

        monkeypatch.setattr(permissions, "granting_role", granting_role)
        monkeypatch.setattr(permissions, "visible_site_ids", visible_site_ids)
        monkeypatch.setattr(permissions, "studies_where", studies_where)
        monkeypatch.setattr(permissions, "require", require)

    def reset(self):
        self.asked.clear()
        self.refused.clear()


@pytest.fixture
def walk_world(trial, db, actor, app, make_user):
    """Records, queries and a log entry at both sites; one walker per role (at site 01 only), one
    with no role; a token for each; CSRF off so that the walk reaches every permission check."""
    from ecrf.review import queries

    objects = {}
    for site, subject in (("01", "01-001"), ("02", "02-001")):
        record = trial.save(subject, "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
        trial.save(subject, "", "cm", {"drug": "paracetamol"})
        query = queries.raise_query(db, trial.actor("mon", "monitor"), "revw", record.id, "/sbp", "?")
        objects[site] = Objects(subject, site, record.id, query.id)
    make_user("target", "site_staff", "revw", sites=["02"])
    walkers = {}
    for role in ROLES:
        make_user(f"w_{role}", role, "revw", sites=["01"])
        walkers[role] = f"w_{role}"
    make_user("w_none")
    walkers[None] = "w_none"
    app.config["WTF_CSRF_ENABLED"] = False
    clients, tokens = {}, {}
    for role, username in walkers.items():
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": "correct horse battery"})
        assert response.status_code == 302, username
        clients[role] = client
        tokens[role] = create_token(db, actor, username)
    return objects, walkers, clients, tokens


def _requests(app, objects):
    """(endpoint, method, own (url, body), other (url, body) or None) for every rule and method."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint in PUBLIC:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            built = {}
            for side, objs in objects.items():
                values = {name: sample_value(name, rule.arguments, objs) for name in rule.arguments}
                url = rule.build(values, append_unknown=False)[1]
                body = {"site": side, "data": {}} if rule.rule.startswith("/api/") and method != "GET" else None
                built[side] = (url, body)
            other = built["02"] if built["02"] != built["01"] else None
            yield rule, method, built["01"], other


def _send(client, method, url, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if url.startswith("/api/"):
        return client.open(url, method=method, headers=headers,
                           data=json.dumps(body) if body is not None else None,
                           content_type="application/json" if body is not None else None)
    if method == "GET":
        return client.open(url, method=method, headers=headers)
    return client.open(url, method=method, headers=headers, data=b"",
                       content_type="application/x-www-form-urlencoded")


def _table_answer(role, action, own_site):
    """What PERMISSIONS says for a walker holding ``role`` at site 01 (None: no role at all)."""
    if role is None:
        return 403 if action == "users.manage" else 404
    if action == "users.manage":
        return "allowed" if role in PERMISSIONS[action] else 403
    if not own_site and action in permissions.SITE_ACTIONS:
        return 404
    if role in PERMISSIONS[action] and action not in STUDY_WIDE_ACTIONS:
        return "allowed"
    return 403


def _outcome(response):
    if response.status_code >= 500:
        return "error"
    if response.status_code == 302 and "/login" in response.headers.get("Location", ""):
        return 401
    return response.status_code if response.status_code in DENIED else "allowed"


def test_every_route_every_role_own_and_other_site(walk_world, app, monkeypatch):
    # The walk is about permissions: a library deprecation in some page is left to that page's own
    # tests (under filterwarnings=error it would otherwise stop the walk at the first such page).
    warnings.simplefilter("ignore", DeprecationWarning)
    objects, walkers, clients, tokens = walk_world
    recorder = Recorder(monkeypatch)
    anonymous = app.test_client()
    problems, walked = [], 0
    for rule, method, own, other in _requests(app, objects):
        endpoint = rule.endpoint
        api = rule.rule.startswith("/api/")
        response = _send(anonymous, method, *own)
        if _outcome(response) != 401:
            problems.append(f"{method} {own[0]} anonymous: {response.status_code}, not refused")
        if endpoint in SIGNED_IN:
            continue
        action = ACTIONS.get(endpoint)
        if isinstance(action, dict):
            action = action.get(method)
        for role, client in clients.items():
            own_answer = None
            for own_site, request in ((True, own), (False, other)):
                if request is None:
                    continue
                recorder.reset()
                who = f"{method} {request[0]} as {walkers[role]} ({'own' if own_site else 'other'} site)"
                try:
                    response = _send(client, method, *request, token=tokens[role] if api else None)
                except Exception as exc:  # noqa: BLE001 - the app propagates errors under test
                    problems.append(f"{who}: raised {exc!r}")
                    continue
                walked += 1
                got = _outcome(response)
                if got == "error":
                    problems.append(f"{who}: {response.status_code} server error")
                    continue
                if not recorder.asked and got != 404:  # (a 404 shows nothing, whoever asks)
                    problems.append(f"{who}: answered {response.status_code} without asking the permission table")
                    continue
                if recorder.refused and got != recorder.refused[0][1]:
                    problems.append(f"{who}: the table refused {recorder.refused[0]}, the route answered {got}")
                if got == 403 and not recorder.refused and all(r is not None for _, r in recorder.asked):
                    # a refusal must come from the table (a 404 may just be an object not there)
                    problems.append(f"{who}: 403 although every permission asked was granted")
                if own_site:
                    own_answer = got
                elif got != 404 and not (got == 403 and own_answer == 403):
                    # 404, or the 403 its role gets for every object of this kind (refused before the
                    # object is even loaded, so that answer tells nothing about the id either)
                    problems.append(f"{who}: {got}, but another site's objects must be 404")
                if role is None and "study_key" in rule.arguments and got != 404:
                    problems.append(f"{who}: {got}, but a user with no role in the study must get 404")
                if action is not None:
                    expected = _table_answer(role, action, own_site)
                    if got != expected:
                        problems.append(f"{who}: {got}, the table says {expected} for {action}")
    assert walked > 300
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


@pytest.fixture
def leaky_route(app):
    """A route that forgets the permission table (added before the app serves its first request)."""
    from flask_login import login_required

    @login_required
    def leaky(study_key, record_id):
        return "patient data"

    app.add_url_rule("/studies/<study_key>/records/<int:record_id>/leak", "leak.view", leaky)


def test_the_walk_notices_a_route_without_a_permission_check(leaky_route, walk_world, app, monkeypatch):
    objects, walkers, clients, tokens = walk_world
    recorder = Recorder(monkeypatch)
    (rule, method, own, other), = [r for r in _requests(app, objects) if r[0].endpoint == "leak.view"]
    response = _send(clients["sponsor"], method, *other)
    # What the walk reports as "answered 200 without asking the permission table":
    assert response.status_code == 200 and not recorder.asked
