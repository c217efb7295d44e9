"""SAE report pages: an AE's reports with the Generate button, the PDF, and the sponsor's inbox.

``init_app`` also registers the JSON API of ecrf.web.api_sae (exempt from CSRF: it authenticates by
bearer token only).
"""
from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ecrf.auth import permissions
from ecrf.capture.service import get_subject
from ecrf.db import get_session, utcnow
from ecrf.errors import Conflict, Invalid
from ecrf.reports import mail, sae, service
from ecrf.studies import definition, get_study
from ecrf.web.auth import current_actor

bp = Blueprint("reports", __name__)
RECORD = "/studies/<study_key>/subjects/<subject_key>/log/<form_key>/<int:seq>/sae-reports"


def init_app(app):
    from ecrf.web import api_sae, csrf

    csrf.exempt(api_sae.bp)
    app.register_blueprint(bp)
    app.register_blueprint(api_sae.bp)


def _record_page(session, ae, problem=None, status=200):
    user = current_user.user
    reports = service.reports_for_record(session, ae.record)
    clock = sae.clock(ae.spec, ae.record.data or {}, reports[0].issued_at if reports else None)
    missing = None
    try:
        sae.check_reportable(ae.form, ae.record.data or {}, ae.record.seq)
    except Invalid as exc:
        missing = exc
    timezone = ae.subject.site.timezone or "UTC"
    return render_template(
        "reports/record.html", ae=ae, reports=reports, clock=clock, now=utcnow(), missing=missing,
        problem=problem, tz=timezone, local_time=sae.local_time, is_overdue=service.is_overdue,
        can_issue=permissions.can(session, user, "sae.issue", ae.study, ae.subject.site),
        can_receive=permissions.can(session, user, "sae.receive", ae.study)), status


@bp.route(RECORD, methods=["GET", "POST"])
@login_required
def record_reports(study_key, subject_key, form_key, seq):
    """GET: the AE's reports and clock. POST (the Generate button): issue the next report."""
    session = get_session()
    study = get_study(session, study_key)
    subject = get_subject(session, study, subject_key)
    permissions.require(session, current_user.user, "sae.view", study, subject.site)
    ae = service.locate_ae(session, study_key, subject_key, form_key, seq)
    if request.method == "GET":
        return _record_page(session, ae)
    role = permissions.require(session, current_user.user, "sae.issue", study, subject.site)
    try:
        report, delivery = mail.issue_and_deliver(session, current_actor(role), current_app.config,
                                                  study_key, subject_key, form_key, seq)
    except (Invalid, Conflict) as exc:
        session.rollback()
        return _record_page(session, service.locate_ae(session, study_key, subject_key, form_key, seq),
                            problem=exc, status=exc.status)
    flash(f"{report.number} {report.type_label} issued ({report.pages} page(s), "
          f"sha256 {report.sha256[:16]}…).")
    if delivery is not None:
        flash(f"E-mail to {', '.join(delivery.recipients)}: {delivery.status}.")
    return redirect(url_for("reports.record_reports", study_key=study_key, subject_key=subject_key,
                            form_key=form_key, seq=seq))


@bp.route("/studies/<study_key>/sae-reports/<number>/<int:version>.pdf")
@login_required
def pdf(study_key, number, version):
    session = get_session()
    study = get_study(session, study_key)
    report = service.get_report(session, study, number, version)
    permissions.require(session, current_user.user, "sae.view", study, report.site)
    return Response(service.report_pdf(session, report), mimetype="application/pdf", headers={
        "ETag": f'"{report.sha256}"',
        "Content-Disposition": f'inline; filename="{report.number}-v{report.version}.pdf"'})


@bp.route("/studies/<study_key>/sae-inbox")
@login_required
def inbox(study_key):
    """Every SAE report of the study at the user's sites (all sites for the sponsor), with the
    clock; site users also see serious AEs not reported yet."""
    session = get_session()
    user = current_user.user
    study = get_study(session, study_key)
    permissions.require(session, user, "sae.view", study)
    reports = service.list_reports(session, study,
                                   permissions.visible_site_ids(session, user, "sae.view", study))
    pending = []
    if permissions.can(session, user, "form.view", study):
        pending = service.pending_saes(session, study,
                                       permissions.visible_site_ids(session, user, "form.view", study))
    return render_template("reports/inbox.html", study=study, spec=definition(study), reports=reports,
                           pending=pending, now=utcnow(), local_time=sae.local_time,
                           is_overdue=service.is_overdue,
                           can_receive=permissions.can(session, user, "sae.receive", study))


@bp.route("/studies/<study_key>/sae-reports/<number>/<int:version>/received", methods=["POST"])
@login_required
def received(study_key, number, version):
    session = get_session()
    user = current_user.user
    study = get_study(session, study_key)
    report = service.get_report(session, study, number, version)
    permissions.require(session, user, "sae.view", study, report.site)
    role = permissions.require(session, user, "sae.receive", study, report.site)
    try:
        service.mark_received(session, current_actor(role), study_key, number, version)
    except Conflict as exc:
        session.rollback()
        flash(str(exc))
    else:
        flash(f"{number} version {version} marked received.")
    return redirect(url_for("reports.inbox", study_key=study_key))


