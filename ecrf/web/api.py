"""JSON API v1: the same service functions as the pages, no logic of its own.

Every route loads its objects (404), asks the permission table (403/404), calls one service and
answers JSON. Errors are ``{"error": message}`` plus ``"errors": [{"pointer", "message"}]`` for data.

Concurrency: a record's ETag is its version (``"3"``). A PUT that changes an existing record names
the version it was based on (``"version"`` in the body or ``If-Match``), else 428; a stale one is a
409 with the record as it is now. POSTs that create take an ``Idempotency-Key`` (``web/idempotent``).
"""
import re

from flask import Blueprint, g, jsonify, request, url_for

from ecrf.auth import permissions
from ecrf.capture import service, subjects
from ecrf.capture.records import record_view, subject_records
from ecrf.capture.validate import pointer
from ecrf.capture.visits import visit_forms
from ecrf.db import get_session
from ecrf.errors import EcrfError, Invalid, NotFound
from ecrf.studies import definition, get_site, get_study
from ecrf.web.bearer import api_actor, bearer_required
from ecrf.web.idempotent import idempotent
from ecrf.web.input_guard import number_arg

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class BadRequest(EcrfError):
    status = 400


class UnsupportedMediaType(EcrfError):
    status = 415


#: The keys a body may carry (the OpenAPI document's schemas say the same, with
#: ``additionalProperties: false``).
NEW_SUBJECT_KEYS = ("site", "subject")
SAVE_KEYS = ("data", "complete", "missing", "version", "reason")


def _body():
    """The JSON object sent; 415 when it is not JSON, 400 when not an object."""
    if not request.is_json:
        raise UnsupportedMediaType("send JSON with Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _only(body, keys):
    """``body`` when it holds no key but ``keys``; else 422 naming the unknown ones (asked after
    the permission check, like every validation)."""
    unknown = sorted(set(body) - set(keys))
    if unknown:
        raise Invalid(f"unknown keys in the body: {', '.join(map(repr, unknown))}; "
                      f"it may hold {', '.join(keys)}", [(pointer((k,)), "not a known key") for k in unknown])
    return body


def _subject_and_role(session, study_key, subject_key, action):
    study = get_study(session, study_key)
    subject = service.get_subject(session, study, subject_key)
    role = permissions.require(session, g.api_user, action, study, subject.site)
    return study, subject, role


def _flag(body, key, default=False):
    value = body.get(key, default)
    if value is not default and not isinstance(value, bool):
        raise Invalid(f"{key!r} must be true or false", [(f"/{key}", "must be true or false")])
    return value


@bp.get("/studies/<study_key>/subjects")
@bearer_required
def list_subjects(study_key):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, g.api_user, "subject.view", study)
    site_ids = permissions.visible_site_ids(session, g.api_user, "subject.view", study)
    site_key = request.args.get("site")
    site = get_site(session, study, site_key) if site_key else None
    if site is not None and site_ids is not None and site.id not in site_ids:
        raise NotFound("not found")
    rows = subjects.list_subjects(session, study, site_ids, site)
    return jsonify({"subjects": [{"subject": s.key, "site": s.site.key, "state": s.state,
                                  "state_reason": s.state_reason} for s in rows]})


@bp.post("/studies/<study_key>/subjects")
@bearer_required
@idempotent
def create_subject(study_key):
    session = get_session()
    body = _body()
    study = get_study(session, study_key)
    site_key = body.get("site")
    if not isinstance(site_key, str):
        raise Invalid("'site' is required", [("/site", "give the site id")])
    site = get_site(session, study, site_key)
    role = permissions.require(session, g.api_user, "subject.enrol", study, site)
    _only(body, NEW_SUBJECT_KEYS)
    subject_key = body.get("subject")
    if subject_key is not None and not isinstance(subject_key, str):
        raise Invalid("'subject' must be text", [("/subject", "must be text")])
    subject = service.enrol_subject(session, api_actor(role), study_key, site_key, subject_key)
    return jsonify({"subject": subject.key, "site": site_key, "state": subject.state}), 201


@bp.route("/studies/<study_key>/subjects/<subject_key>/visits/<visit_key>/forms/<form_key>",
          methods=["GET", "PUT"])
@bearer_required
def visit_form(study_key, subject_key, visit_key, form_key):
    session, spec, subject, role = _form_request(study_key, subject_key, form_key, visit_key)
    if request.method == "GET":
        return _with_etag(record_view(spec, service.get_record(session, subject, visit_key, form_key),
                                      form_key))
    return _save(session, role, study_key, subject_key, visit_key, form_key, None)


@bp.route("/studies/<study_key>/subjects/<subject_key>/forms/<form_key>", methods=["GET", "POST"])
@bearer_required
@idempotent
def log_form(study_key, subject_key, form_key):
    session, spec, subject, role = _form_request(study_key, subject_key, form_key)
    if request.method == "GET":
        return jsonify({"records": [dict(record_view(spec, r, form_key), record=str(r.seq))
                                    for r in subject_records(session, subject, form_key)]})
    body = _only(_body(), SAVE_KEYS)
    result = service.save_form(session, api_actor(role), study_key, subject_key, "", form_key,
                               body.get("data"), complete=_flag(body, "complete"), missing=_missing(body))
    return jsonify({"record": str(result.record.seq), "version": result.record.version,
                    "status": result.record.status}), 201, {
        "ETag": etag(result.record.version),
        "Location": url_for("api.log_record", study_key=study_key, subject_key=subject_key,
                            form_key=form_key, record=result.record.seq)}


@bp.route("/studies/<study_key>/subjects/<subject_key>/forms/<form_key>/<int:record>",
          methods=["GET", "PUT"])
@bearer_required
def log_record(study_key, subject_key, form_key, record):
    session, spec, subject, role = _form_request(study_key, subject_key, form_key)
    row = service.get_record(session, subject, "", form_key, record)
    if row is None:
        raise NotFound(f"no record {record} of {form_key!r}")
    if request.method == "GET":
        return _with_etag(dict(record_view(spec, row, form_key), record=str(row.seq)))
    return _save(session, role, study_key, subject_key, "", form_key, record)


def _form_request(study_key, subject_key, form_key, visit_key=None):
    """(session, definition, subject, role) for a request on one form of a subject: a visit form
    when ``visit_key`` is given, a log form otherwise; the caller may view it (GET) or edit it."""
    session = get_session()
    action = "form.view" if request.method == "GET" else "form.edit"
    study, subject, role = _subject_and_role(session, study_key, subject_key, action)
    spec = definition(study)
    if visit_key is None:
        if form_key not in spec.log_forms:
            raise NotFound(f"no log form {form_key!r}")
    elif form_key not in visit_forms(session, spec, subject, visit_key):
        raise NotFound(f"no form {form_key!r} at visit {visit_key!r}")
    return session, spec, subject, role


def _missing(body):
    missing = body.get("missing")
    if missing is not None and not isinstance(missing, dict):
        raise Invalid("'missing' must be an object", [("/missing", "must be an object")])
    return missing


def etag(version):
    """The ETag of a record: its version (0 for a form not started), a strong tag."""
    return f'"{version}"'


def _with_etag(view):
    return jsonify(view), 200, {"ETag": etag(view["version"])}


_ETAG = re.compile(r'^\s*"(\d{1,18})"\s*$')


def _based_on(body):
    """The version a PUT was based on: ``"version"`` in the body and/or ``If-Match: "N"`` (they
    must agree), or None when neither is sent."""
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise Invalid("'version' must be a whole number", [("/version", "must be a whole number")])
    header = request.headers.get("If-Match")
    if header is None:
        return version
    match = _ETAG.match(header)
    if match is None:
        raise BadRequest('If-Match must be the one ETag of the record you edited, such as "3" '
                         "(a weak tag, a list or * does not say which version you saw)")
    tagged = int(match.group(1))
    if version is not None and version != tagged:
        raise Invalid(f"'version' ({version}) and If-Match ({tagged}) name different versions",
                      [("/version", "does not match If-Match")])
    return tagged


def _save(session, role, study_key, subject_key, visit_key, form_key, seq):
    body = _only(_body(), SAVE_KEYS)
    version = _based_on(body)
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise Invalid("'reason' must be text", [("/reason", "must be text")])
    try:
        result = service.save_form(session, api_actor(role), study_key, subject_key, visit_key, form_key,
                                   body.get("data"), complete=_flag(body, "complete", None),
                                   expected_version=version, require_version=True, reason=reason,
                                   seq=seq, missing=_missing(body))
    except service.StaleVersion as exc:
        return jsonify({"error": str(exc), "version": exc.version, "data": exc.data,
                        "missing": exc.missing, "status": exc.status}), 409, {"ETag": etag(exc.version)}
    return jsonify({"version": result.record.version, "status": result.record.status,
                    "changed": [p for p, _, _ in result.changes]}), 200, {"ETag": etag(result.record.version)}


@bp.get("/studies/<study_key>/audit")
@bearer_required
def audit(study_key):
    from ecrf import audit_view

    session = get_session()
    study = get_study(session, study_key)
    scope = audit_view.scope_for(session, g.api_user, study)
    filters = audit_view.AuditFilters.from_mapping(request.args)
    before = number_arg("before")
    page = audit_view.query_events(session, scope, filters, before=before)
    events = [{"seq": e.seq, "ts": e.ts, "action": e.action, "actor": e.actor_name, "role": e.actor_role,
               "site": e.site, "subject": e.subject, "visit": e.visit, "form": e.form,
               "form_version": e.form_version, "record": e.record, "field": e.field, "old": e.old,
               "new": e.new, "reason": e.reason, "channel": e.channel} for e in page.events]
    older = (url_for("api.audit", study_key=study.key, before=page.older, **filters.params())
             if page.older else None)
    return jsonify({"events": events, "next": older})


@bp.get("/openapi.json")
def openapi():
    from ecrf.web.openapi import document

    return jsonify(document(url_for("api.openapi", _external=False).rsplit("/", 1)[0]))


def init_app(app):
    from ecrf.web import api_randomization, csrf

    csrf.exempt(bp)
    csrf.exempt(api_randomization.bp)
    app.register_blueprint(bp)
    app.register_blueprint(api_randomization.bp)
