"""Audit trail pages: the filtered log of a study, one field's history, a form record as it was at a
past moment, and the export download. Each view loads the study (404), asks ``audit_view.scope_for``
(the permission table's ``audit.view``: 403/404) and calls one ``ecrf.audit_view`` function.

The form pages link here: ``url_for("audit.field", study_key=…, record=<id>, field=<pointer>)`` for a
field's history and ``url_for("audit.record", study_key=…, record_id=<id>, at=<ISO time>)`` for the
record as it was.
"""
import datetime as dt
import tempfile

from flask import Blueprint, Response, render_template, request
from flask_login import current_user, login_required

from audit import Action
from ecrf import audit_view
from ecrf.db import get_session
from ecrf.errors import Invalid
from ecrf.studies import definition, get_study, list_sites
from ecrf.web.auth import current_actor
from ecrf.web.input_guard import int_arg, number_arg

bp = Blueprint("audit", __name__, url_prefix="/studies/<study_key>/audit")


def _study_and_scope(study_key):
    session = get_session()
    study = get_study(session, study_key)
    return session, study, audit_view.scope_for(session, current_user.user, study)


@bp.get("")
@login_required
def index(study_key):
    session, study, scope = _study_and_scope(study_key)
    filters = audit_view.AuditFilters.from_mapping(request.args)
    page = audit_view.query_events(session, scope, filters, before=number_arg("before"), after=number_arg("after"))
    sites = [s for s in list_sites(session, study) if scope.sees_site(s.key)]
    return render_template("audit/index.html", study=study, scope=scope, filters=filters, page=page,
                           params=filters.params(), sites=sites, actions=[str(a) for a in Action])


@bp.get("/field")
@login_required
def field(study_key):
    session, study, scope = _study_and_scope(study_key)
    record_id = int_arg("record", minimum=1)
    if record_id is None:
        raise Invalid("record must be a number")
    history = audit_view.field_history(session, scope, record_id, request.args.get("field", ""))
    return render_template("audit/field.html", study=study, history=history,
                           title=_field_title(study, history.form, history.field))


@bp.get("/record/<int:record_id>")
@login_required
def record(study_key, record_id):
    session, study, scope = _study_and_scope(study_key)
    at = request.args.get("at") or None
    snapshot = audit_view.record_as_of(session, record_id, at, scope=scope)
    values = dict(snapshot.fields())
    flags = {pointer: audit_view.display_value(flag) for pointer, flag in snapshot.missing.items()}
    rows = [(pointer, values.get(pointer), flags.get(pointer), _field_title(study, snapshot.form, pointer))
            for pointer in [*values, *sorted(set(flags) - set(values))]]
    return render_template("audit/record.html", study=study, snapshot=snapshot, rows=rows, asked=at)


@bp.get("/export")
@login_required
def export(study_key):
    session, study, scope = _study_and_scope(study_key)
    return export_response(session, scope, f"audit-{study.key}")


def export_response(session, scope, name):
    """The download of the events ``scope`` and the request's filters select, in the requested
    format (``?format=csv|jsonl``), as ``<name>-<UTC time>.<format>``; the export is audited."""
    fmt = request.args.get("format", "csv")
    filters = audit_view.AuditFilters.from_mapping(request.args)
    out = tempfile.TemporaryFile()  # a large trail goes to disk, not memory
    try:
        audit_view.export_events(session, current_actor(scope.role), scope, fmt, out, filters)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Response(_chunks(out), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'})


def _chunks(file, size=1 << 16):
    """The file's content, closing it when sent (or when the response is dropped)."""
    try:
        while chunk := file.read(size):
            yield chunk
    finally:
        file.close()


def _field_title(study, form_key, pointer):
    """The title of the top-level field a pointer starts with, from the study's current definition
    (None when that version no longer has the form or field: the pointer is always shown too)."""
    form = definition(study).forms.get(form_key)
    name = pointer.split("/")[1] if pointer.startswith("/") else ""
    field_def = form.field(name) if form is not None else None
    return field_def.title if field_def is not None else None
