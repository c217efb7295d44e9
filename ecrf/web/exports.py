"""Data exports from the web: a page for data managers (study, sites, forms, format) whose download
streams the export, and ``GET /api/v1/studies/<study>/export?format=...`` for pipelines.

Both load the study, ask ``export_service.scope_for`` (the permission table's ``export``, the user's
sites, ``can_see_arm``) and call ``run_export``; the export is written to a temporary folder on the
server (never held in memory), audited, then streamed: ODM as one XML file, every other format as a
ZIP of its folder (files plus manifest.json). The temporary files go when the response ends.
"""
import datetime as dt
import shutil
import tempfile
import zipfile
from pathlib import Path

from flask import Blueprint, Response, g, render_template, request
from flask_login import current_user, login_required

from ecrf.auth import permissions
from ecrf.db import get_session
from ecrf.errors import Invalid
from ecrf.exchange import export_service
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


def _chunks(folder, path, size=1 << 16):
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(size):
                yield chunk
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def download(session, actor, scope, fmt):
    """Run the export into a temporary folder and answer it as a streamed download."""
    folder = Path(tempfile.mkdtemp(prefix="ecrf-export-"))
    try:
        target = folder / ("export.xml" if fmt == "odm" else "export")
        export_service.run_export(session, actor, scope, fmt, target)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"{scope.study.key}-{fmt}-{stamp}"
        if fmt == "odm":
            path, mimetype, name = target, "application/xml", f"{name}.xml"
        else:
            path, mimetype, name = folder / "export.zip", "application/zip", f"{name}.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(target.iterdir()):
                    archive.write(file, f"{scope.study.key}-{fmt}/{file.name}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Response(_chunks(folder, path), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(path.stat().st_size)})


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
    return download(session, actor_for(scope.role), scope, fmt)


@bp.get("/download")
@login_required
def page_download(study_key):
    return _requested(current_user.user, current_actor, study_key)


@api_bp.get("/studies/<study_key>/export")
@bearer_required
def api_export(study_key):
    return _requested(g.api_user, api_actor, study_key)
