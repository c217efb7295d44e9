"""JSON API for SAE reports (token auth, exempt from CSRF): issue, list, download, acknowledge.

    POST .../subjects/<subject>/forms/<ae form>/<entry>/sae-reports   issue the next report (201)
    GET  .../subjects/<subject>/forms/<ae form>/<entry>/sae-reports   that AE's reports and clock
    GET  .../sae-reports                                              the inbox (the user's sites)
    GET  .../sae-reports/<number>/<version>/pdf                       the PDF exactly as issued
    POST .../sae-reports/<number>/<version>/received                  the sponsor's receipt

(``...`` is ``/api/v1/studies/<study>``.)
Each route loads (404), asks the permission table (403/404), calls one service and answers JSON.
"""
from flask import Blueprint, Response, current_app, g, jsonify, url_for

from ecrf.auth import permissions
from ecrf.capture.service import get_subject
from ecrf.db import get_session, utcnow
from ecrf.reports import mail, sae, service
from ecrf.studies import definition, get_study
from ecrf.web.bearer import api_actor, bearer_required
from ecrf.web.idempotent import idempotent

bp = Blueprint("api_sae", __name__, url_prefix="/api/v1")
RECORD = "/studies/<study_key>/subjects/<subject_key>/forms/<form_key>/<int:seq>/sae-reports"
REPORT = "/studies/<study_key>/sae-reports/<number>/<int:version>"


def _iso(moment):
    return moment.isoformat() if moment else None


def report_json(report, now=None):
    """The JSON of one issued report (never its content or patient data beyond the subject id)."""
    receipt = report.receipt
    return {
        "report": report.number, "version": report.version, "type": report.report_type,
        "sha256": report.sha256, "pages": report.pages,
        "pdf": url_for("api_sae.pdf", study_key=report.content["study"]["key"], number=report.number,
                       version=report.version),
        "site": report.site.key, "subject": report.subject.key, "ae_entry": report.record.seq,
        "issued_at": _iso(report.issued_at), "issued_by": report.issued_by,
        "awareness_at": _iso(report.awareness_at), "due_at": _iso(report.due_at),
        "overdue": service.is_overdue(report),
        "received_at": _iso(receipt.received_at) if receipt else None,
        "received_by": receipt.received_by if receipt else None,
    }


def _ae(study_key, subject_key, form_key, seq, action):
    session = get_session()
    study = get_study(session, study_key)
    subject = get_subject(session, study, subject_key)
    role = permissions.require(session, g.api_user, action, study, subject.site)
    return session, service.locate_ae(session, study_key, subject_key, form_key, seq), role


@bp.post(RECORD)
@bearer_required
@idempotent
def issue(study_key, subject_key, form_key, seq):
    session, ae, role = _ae(study_key, subject_key, form_key, seq, "sae.issue")
    report, delivery = mail.issue_and_deliver(session, api_actor(role), current_app.config, study_key,
                                              subject_key, form_key, seq)
    body = report_json(report)
    if delivery is not None:
        body["email"] = {"to": list(delivery.recipients), "status": delivery.status}
    return jsonify(body), 201, {"Location": body["pdf"]}


@bp.get(RECORD)
@bearer_required
def record_reports(study_key, subject_key, form_key, seq):
    session, ae, _role = _ae(study_key, subject_key, form_key, seq, "sae.view")
    reports = service.reports_for_record(session, ae.record)
    clock = sae.clock(ae.spec, ae.record.data or {}, reports[0].issued_at if reports else None)
    now = utcnow()
    return jsonify({"reports": [report_json(r) for r in reports],
                    "clock": {"awareness_at": _iso(clock.aware_at), "due_at": _iso(clock.due_at),
                              "reported_at": _iso(clock.reported_at), "hours": clock.hours,
                              "elapsed_hours": clock.elapsed_hours(now),
                              "overdue": clock.overdue(now)}})


@bp.get("/studies/<study_key>/sae-reports")
@bearer_required
def inbox(study_key):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, g.api_user, "sae.view", study)
    site_ids = permissions.visible_site_ids(session, g.api_user, "sae.view", study)
    return jsonify({"reports": [report_json(r) for r in service.list_reports(session, study, site_ids)],
                    "report_within_hours": sae.report_hours(definition(study))})


def _report(study_key, number, version, action):
    session = get_session()
    study = get_study(session, study_key)
    report = service.get_report(session, study, number, version)
    role = permissions.require(session, g.api_user, "sae.view", study, report.site)
    if action != "sae.view":
        role = permissions.require(session, g.api_user, action, study, report.site)
    return session, report, role


@bp.get(REPORT + "/pdf")
@bearer_required
def pdf(study_key, number, version):
    session, report, _role = _report(study_key, number, version, "sae.view")
    return Response(service.report_pdf(session, report), mimetype="application/pdf", headers={
        "ETag": f'"{report.sha256}"',
        "Content-Disposition": f'inline; filename="{report.number}-v{report.version}.pdf"'})


@bp.post(REPORT + "/received")
@bearer_required
@idempotent
def received(study_key, number, version):
    session, report, role = _report(study_key, number, version, "sae.receive")
    service.mark_received(session, api_actor(role), study_key, number, version)
    return jsonify(report_json(service.get_report(session, get_study(session, study_key), number, version)))
