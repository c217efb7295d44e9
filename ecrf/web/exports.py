"""Data exports from the web: a page for data managers (study, sites, forms, format) whose download
streams the export, and ``GET /api/v1/studies/<study>/export?format=...`` for pipelines.

Both load the study, ask ``export_service.scope_for`` (the permission table's ``export``, the user's
sites, ``can_see_arm``) and stream the export as it is written (``export_stream``): ODM as one XML
file, every other format as a ZIP of its folder (files, then manifest.json). Nothing is staged on
the server; the export reads one snapshot through a session of its own, open until the last byte, and the audit event is appended only when the export is complete.
"""
import datetime as dt

from flask import Blueprint, Response, current_app, g, render_template, request
from flask_login import current_user, login_required

from ecrf.auth import permissions
from ecrf.db import get_session
from ecrf.errors import Invalid
from ecrf.exchange import export_service, export_stream
from ecrf.studies import definition, get_study, list_sites
from ecrf.web.auth import current_actor
from ecrf.web.bearer import api_actor, bearer_required

bp = Blueprint("exports", __name__, url_prefix="/studies/<study_key>/export")
api_bp = Blueprint("api_exports", __name__, url_prefix="/api/v1")

#: Format -> what the page calls it.
WEB_FORMATS = {"csv": "CSV, one file per form (ZIP)", "csv-long": "CSV, long layout (ZIP)",
               "odm": "CDISC ODM 1.3.2 (XML)", "dataset-json": "CDISC Dataset-JSON 1.1 (ZIP)",
               "ndjson": "Dataset-JSON 1.1 as NDJSON (ZIP)", "dta": "Stata .dta (ZIP)",
               "sav": "SPSS .sav (ZIP)", "xpt": "SAS transport .xpt (ZIP)"}


def init_app(app):
    from ecrf.web import csrf

    csrf.exempt(api_bp)
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)


def _choices(args):
    fmt = args.get("format", "csv")
    if fmt not in WEB_FORMATS:
        raise Invalid(f"unknown export format {fmt!r}; use one of {', '.join(WEB_FORMATS)}")
    forms = tuple(f for value in args.getlist("form") for f in value.split(",") if f)
    return fmt, tuple(args.getlist("site")), forms


def download(actor, scope, fmt):
    """The export as a download streamed while it is written (``export_stream``)."""
    chunks = export_stream.stream_export(current_app.extensions["ecrf_db"].sessions, actor, scope, fmt)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{scope.study.key}-{fmt}-{stamp}"
    mimetype, name = ("application/xml", f"{name}.xml") if fmt == "odm" else ("application/zip", f"{name}.zip")
    return Response(chunks, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("")
@login_required
def page(study_key):
    session = get_session()
    study = get_study(session, study_key)
    scope = export_service.scope_for(session, current_user.user, study.key)
    allowed = permissions.visible_site_ids(session, current_user.user, "export", study)
    sites = [s for s in list_sites(session, study) if allowed is None or s.id in allowed]
    spec = definition(study)
    return render_template("exports/export.html", study=study, spec=spec, sites=sites, scope=scope,
                           formats=WEB_FORMATS)


def _requested(user, actor_for, study_key):
    """The download the request's arguments ask for, as ``user`` (acting as ``actor_for(role)``)."""
    session = get_session()
    fmt, sites, forms = _choices(request.args)
    scope = export_service.scope_for(session, user, study_key, sites, forms)
    return download(actor_for(scope.role), scope, fmt)


@bp.get("/download")
@login_required
def page_download(study_key):
    return _requested(current_user.user, current_actor, study_key)


@api_bp.get("/studies/<study_key>/export")
@bearer_required
def api_export(study_key):
    return _requested(g.api_user, api_actor, study_key)
