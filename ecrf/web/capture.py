"""Form pages: a subject's page (visits, forms and logs), a visit's form, and log forms (AE log,
concomitant medications) listed and edited per subject.

Each view loads (404), asks the permission table for the subject's site (a subject of another site
is not found), then either shows the record or hands the post to ``capture.service.save_form`` and
redirects; a refused save re-renders the page with the messages at their fields and everything the
user typed (422), a stale one with both values of each field that differs (409).
"""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from ecrf.auth import permissions
from ecrf.capture import service
from ecrf.capture.records import subject_records
from ecrf.capture.schedule import window_warning
from ecrf.capture.visits import subject_visits, visit_forms
from ecrf.db import get_session
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.formgen import Context, layout_for
from ecrf.formgen.convert import new_document
from ecrf.formgen.page import ACTION, FormPage
from ecrf.models import FormRecord, RecordStatus
from ecrf.studies import definition, get_study
from ecrf.web.auth import current_actor

bp = Blueprint("capture", __name__)

SUBJECT = "/studies/<study_key>/subjects/<subject_key>"


def _load(study_key, subject_key, action):
    """(session, study, definition, subject, role) or 404/403."""
    session = get_session()
    study = get_study(session, study_key)
    subject = service.get_subject(session, study, subject_key)
    role = permissions.require(session, current_user.user, action, study, subject.site)
    return session, study, definition(study), subject, role


def _can_edit(session, study, subject):
    return permissions.can(session, current_user.user, "form.edit", study, subject.site)


@bp.route(SUBJECT)
@login_required
def subject(study_key, subject_key):
    session, study, spec, subject, _ = _load(study_key, subject_key, "form.view")
    statuses = {(r.visit_key, r.form_key): r.status for r in session.scalars(
        select(FormRecord).where(FormRecord.subject_id == subject.id, FormRecord.visit_key != ""))}
    counts = dict(session.execute(
        select(FormRecord.form_key, func.count()).where(
            FormRecord.subject_id == subject.id, FormRecord.visit_key == "")
        .group_by(FormRecord.form_key)).all())
    unscheduled = [v for v in subject_visits(session, subject).values() if v.unscheduled]
    from ecrf.capture.schedule import applies
    from ecrf.web.randomization import subject_panel
    from ecrf.web.subjects import panel_context

    return render_template("capture/subject.html", study=study, spec=spec, subject=subject,
                           visits=[v for v in spec.visits if applies(v, subject.arm)],
                           rz=subject_panel(session, study, subject),
                           statuses=statuses, counts=counts, unscheduled=unscheduled,
                           unscheduled_forms=tuple(spec.document.get("unscheduled_forms", ())),
                           panel=panel_context(session, study, subject))


@bp.route(SUBJECT + "/<visit_key>/<form_key>", methods=["GET", "POST"])
@login_required
def visit_form(study_key, subject_key, visit_key, form_key):
    session, study, spec, subject, role = _load(
        study_key, subject_key, "form.edit" if request.method == "POST" else "form.view")
    if form_key not in visit_forms(session, spec, subject, visit_key):
        raise NotFound(f"form {form_key!r} is not collected at visit {visit_key!r}")
    record = service.get_record(session, subject, visit_key, form_key)
    visit = spec.visit(visit_key)
    rows = subject_visits(session, subject)
    dates = {k: v.visit_date for k, v in rows.items() if v.visit_date}
    label = visit.label if visit else (rows[visit_key].label if visit_key in rows else visit_key)
    where = {"visit": label, "visit_key": visit_key, "visit_date": dates.get(visit_key),
             "window": window_warning(spec, visit_key, dates, subject.arm) if visit else None}
    return _form(session, study, spec, subject, role, form_key, visit_key, record, None, where)


@bp.route(SUBJECT + "/log/<form_key>")
@login_required
def log(study_key, subject_key, form_key):
    session, study, spec, subject, _ = _load(study_key, subject_key, "form.view")
    if form_key not in spec.log_forms:
        raise NotFound(f"no log form {form_key!r}")
    form_def = spec.forms[form_key]
    layout = layout_for(form_def)
    columns = [layout.field(n) for n in form_def.schema.get("x-ecrf", {}).get("summary", ())
               if layout.field(n)] or list(layout.fields[:4])
    page = FormPage(layout, None, _context(subject), {}, {}, editable=False)
    return render_template("capture/log.html", study=study, spec=spec, subject=subject,
                           form_def=form_def, columns=columns, page=page,
                           records=subject_records(session, subject, form_key),
                           can_edit=_can_edit(session, study, subject))


@bp.route(SUBJECT + "/log/<form_key>/new", methods=["GET", "POST"])
@login_required
def new_log_entry(study_key, subject_key, form_key):
    session, study, spec, subject, role = _load(
        study_key, subject_key, "form.edit")
    if form_key not in spec.log_forms:
        raise NotFound(f"no log form {form_key!r}")
    return _form(session, study, spec, subject, role, form_key, "", None, None, {"log": True})


@bp.route(SUBJECT + "/log/<form_key>/<int:seq>", methods=["GET", "POST"])
@login_required
def log_entry(study_key, subject_key, form_key, seq):
    session, study, spec, subject, role = _load(
        study_key, subject_key, "form.edit" if request.method == "POST" else "form.view")
    if form_key not in spec.log_forms:
        raise NotFound(f"no log form {form_key!r}")
    record = service.get_record(session, subject, "", form_key, seq)
    if record is None:
        raise NotFound(f"no entry {seq} of {form_key!r}")
    return _form(session, study, spec, subject, role, form_key, "", record, seq, {"log": True})


def _record_links(session, study, spec, subject, record, form_key):
    """Links from a saved form to its review page, audit trail, field histories and SAE reports,
    each shown only to roles the permission table allows."""
    if record is None:
        return {}
    user, site = current_user.user, subject.site
    links = {}
    if permissions.can(session, user, "audit.view", study, site):
        links["audit"] = url_for("audit.index", study_key=study.key, record=record.id)
        links["as_of"] = url_for("audit.record", study_key=study.key, record_id=record.id)
        links["field_history"] = url_for("audit.field", study_key=study.key, record=record.id)
    if permissions.can(session, user, "form.view", study, site):
        links["review"] = url_for("review.record_review", study_key=study.key, record_id=record.id)
    safety = spec.safety or {}
    if record.visit_key == "" and safety.get("ae_form") == form_key and permissions.can(
            session, user, "sae.view", study, site):
        links["sae"] = url_for("reports.record_reports", study_key=study.key, subject_key=subject.key,
                               form_key=form_key, seq=record.seq)
    return links


def _ctcae_grades(form_def):
    """For an AE log coded to CTCAE (aellt + aetoxgr): each term's defined grades, so the page offers
    only those (capture refuses the others either way)."""
    if form_def.field("aellt") is None or form_def.field("aetoxgr") is None:
        return None
    from ecrf.coding.ctcae import grade_map

    return grade_map()


def _context(subject):
    return Context.for_zone(subject.site.timezone)


def _form(session, study, spec, subject, role, form_key, visit_key, record, seq, where):
    """Show a form, or handle its post: the same steps for visit forms and log entries."""
    form_def = spec.forms[form_key]
    layout = layout_for(form_def)
    context = _context(subject)
    locked = _locked(session, record if record is not None else subject)
    editable = not locked and _can_edit(session, study, subject)
    checks = _open_queries(session, study, record)
    stored = dict(record.data) if record is not None else {}
    stored_missing = dict(record.missing or {}) if record is not None else {}
    version = record.version if record is not None else 0
    status_before = record.status if record is not None else None  # the record object is updated by the save
    render = dict(study=study, spec=spec, subject=subject, form_def=form_def, record=record,
                  where=where, seq=seq, locked=locked, context=context,
                  links=_record_links(session, study, spec, subject, record, form_key),
                  ctcae_grades=_ctcae_grades(form_def))

    if request.method == "GET":
        document = stored if record is not None else new_document(layout)
        page = FormPage.show(layout, document, stored_missing, context, version, editable=editable,
                             checks=checks)
        return render_template("capture/form.html", page=page, **render)

    if locked:
        raise Conflict("this form is locked; a data manager must unlock it first")
    page = FormPage.submitted(layout, request.form, context, stored if record is not None else None,
                              checks=checks)
    if page.row_action:
        return render_template("capture/form.html", page=page, **render)
    if page.parse_errors:
        # Report every other problem too, so one round trip shows them all.
        prepared = service.prepare(form_def, page.document, _completing(), missing=page.missing,
                                   stored=stored, stored_missing=stored_missing)
        page.add_errors(prepared.errors)
        return render_template("capture/form.html", page=page, **render), 422
    # The version the page was based on (0: a new record). A post without one cannot overwrite.
    expected = page.version if isinstance(page.version, int) else -1
    try:
        result = service.save_form(
            session, current_actor(role), study.key, subject.key, visit_key, form_key, page.document,
            complete=_completing(), expected_version=expected, reason=page.reason, seq=seq,
            missing=page.missing)
    except service.StaleVersion as exc:
        page.set_conflict(exc.version, exc.data, exc.missing, exc.status)
        return render_template("capture/form.html", page=page, **render), 409
    except Invalid as exc:
        page.add_errors(exc.errors or [("", str(exc))])
        return render_template("capture/form.html", page=page, **render), 422
    saved = result.record
    status = "complete" if saved.status == RecordStatus.COMPLETE else "a draft"
    changed = result.changes or result.flag_changes or result.created or saved.status != status_before
    message = f"Saved as {status}." if changed else f"Nothing changed; the form is {status}."
    failing = sum(len(m) for m in result.checks.values())
    if failing:
        message += (f" {failing} soft check{'s' if failing != 1 else ''} failed: the data is saved and "
                    "a query is open at each field marked.")
    flash(message)
    if visit_key:
        return redirect(url_for("capture.visit_form", study_key=study.key, subject_key=subject.key,
                                visit_key=visit_key, form_key=form_key))
    return redirect(url_for("capture.log_entry", study_key=study.key, subject_key=subject.key,
                            form_key=form_key, seq=saved.seq))


def _locked(session, target):
    """The first lock in force on a record (or, before it exists, on its subject), or None."""
    from ecrf.review.locks import active_locks

    if getattr(target, "status", None) == RecordStatus.LOCKED:
        return "this form"
    locks = active_locks(session, target)
    return f"this {'form' if locks[0].scope == 'form' else locks[0].scope}" if locks else None


def _open_queries(session, study, record):
    """{pointer: [{"state", "text", "url"}]}: the record's queries not closed, shown at their field
    (automatic ones are the failed soft checks of the last save)."""
    if record is None:
        return {}
    from ecrf.review.queries import queries_of_record

    out = {}
    for query in queries_of_record(session, record):
        if query.state == "closed":
            continue
        text = query.messages[0].text if query.messages else ""
        out.setdefault(query.field, []).append({
            "state": str(query.state), "text": text, "origin": query.origin,
            "url": url_for("review.query_thread", study_key=study.key, query_id=query.id)})
    return out


def _completing():
    action = request.form.get(ACTION, "draft")
    if action not in ("draft", "complete"):
        abort(400, "unknown action")
    return action == "complete"
