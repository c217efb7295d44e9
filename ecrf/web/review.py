"""Review screens: queries (list, thread, raise, answer, close, re-open), source data verification,
e-signatures with password re-entry, and locks. Each view loads (404), asks the permission table
(403, or 404 for another site's objects), calls one ``ecrf.review`` service and redirects.

Actions have URLs of their own so other pages (the form page) can link and post to them; a ``next``
field (a path on this site) says where to return afterwards.
"""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ecrf.auth import permissions
from ecrf.auth.login import LoginPolicy
from ecrf.capture import service
from ecrf.db import get_session
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import QueryState
from ecrf.review import common, locks, queries, sdv, signatures
from ecrf.review.status import statuses_for_subjects
from ecrf.studies import definition, get_study, list_sites
from ecrf.web.auth import current_actor, safe_next

bp = Blueprint("review", __name__)


class RaiseQueryForm(FlaskForm):
    field = SelectField("Field", validators=[DataRequired()])
    text = TextAreaField("Question", validators=[DataRequired(), Length(max=queries.MAX_TEXT)])


class AnswerForm(FlaskForm):
    text = TextAreaField("Answer", validators=[DataRequired(), Length(max=queries.MAX_TEXT)])
    data_changed = BooleanField("I corrected the data in the form")


class CloseForm(FlaskForm):
    text = TextAreaField("Comment (optional)", validators=[Optional(), Length(max=queries.MAX_TEXT)])


class ReopenForm(FlaskForm):
    text = TextAreaField("Why it is re-opened", validators=[DataRequired(), Length(max=queries.MAX_TEXT)])


class VerifyForm(FlaskForm):
    #: Empty: every field that has a value.
    field = SelectMultipleField("Fields", validate_choice=False)


class SignForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired(), Length(max=1000)])


class LockForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=locks.MAX_REASON)])


class UnlockForm(FlaskForm):
    reason = TextAreaField("Reason for unlocking", validators=[DataRequired(), Length(max=locks.MAX_REASON)])


# --- loading and checking -------------------------------------------------------------------------

def _user():
    return current_user.user


def _quiet(load, *args):
    """Load an object; a missing one answers the same bare 404 as one the user may not see."""
    try:
        return load(*args)
    except NotFound:
        raise NotFound("not found") from None


def _study(session, study_key, action):
    study = _quiet(get_study, session, study_key)
    role = permissions.require(session, _user(), action, study)
    return study, role


def _record(session, study_key, record_id, action):
    study, _ = _study(session, study_key, "study.view")
    record = _quiet(common.get_record, session, study, record_id)
    role = permissions.require(session, _user(), action, study, record.subject.site)
    return study, record, role


def _subject(session, study_key, subject_key, action):
    study, _ = _study(session, study_key, "study.view")
    subject = _quiet(service.get_subject, session, study, subject_key)
    role = permissions.require(session, _user(), action, study, subject.site)
    return study, subject, role


def _query(session, study_key, query_id, action):
    study, _ = _study(session, study_key, "study.view")
    query = _quiet(queries.get_query, session, study, query_id)
    role = permissions.require(session, _user(), action, study, query.subject.site)
    return study, query, role


def _back(default):
    return redirect(safe_next(request.form.get("next") or request.args.get("next")) or default)


def _errors(form, exc):
    """Put a service's field errors on the form (or flash them)."""
    for pointer, message in getattr(exc, "errors", None) or [("", str(exc))]:
        field = getattr(form, pointer.strip("/"), None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [message]
        else:
            flash(message)


def _flash_form_errors(form):
    for name, messages in form.errors.items():
        for message in messages:
            flash(f"{getattr(form, name).label.text}: {message}")


def _policy():
    return LoginPolicy.from_settings(current_app.config)


def _record_url(study, record):
    return url_for("review.record_review", study_key=study.key, record_id=record.id)


@bp.app_template_global()
def review_can(action, study, site=None):
    """Whether the signed-in user may do ``action`` (for showing links and buttons only; every
    view asks the permission table itself)."""
    if not current_user.is_authenticated:
        return False
    return permissions.can(get_session(), current_user.user, action, study, site)


# --- queries --------------------------------------------------------------------------------------

@bp.get("/studies/<study_key>/queries")
@login_required
def query_list(study_key):
    session = get_session()
    study, _ = _study(session, study_key, "query.view")
    site_ids = permissions.visible_site_ids(session, _user(), "query.view", study)
    sites = [s for s in list_sites(session, study) if site_ids is None or s.id in site_ids]
    site = next((s for s in sites if s.key == request.args.get("site")), None)
    state = request.args.get("state") if request.args.get("state") in set(QueryState) else None
    origin = request.args.get("origin") if request.args.get("origin") in ("manual", "auto") else None
    spec = definition(study)
    form = request.args.get("form") if request.args.get("form") in spec.forms else None
    subject = (request.args.get("subject") or "").strip()[:64] or None
    rows = queries.list_queries(session, study, site_ids, state=state, site=site, subject=subject,
                                form=form, origin=origin)
    filters = {"state": state, "site": site.key if site else None, "subject": subject, "form": form,
               "origin": origin}
    return render_template("review/queries.html", study=study, spec=spec, rows=rows, sites=sites,
                           states=list(QueryState), filters=filters)


@bp.get("/studies/<study_key>/queries/<int:query_id>")
@login_required
def query_thread(study_key, query_id):
    session = get_session()
    study, query, _ = _query(session, study_key, query_id, "query.view")
    site = query.subject.site
    return render_template("review/query.html", study=study, query=query, site=site,
                           record=query.record, spec=definition(study),
                           answer_form=AnswerForm(formdata=None), close_form=CloseForm(formdata=None),
                           reopen_form=ReopenForm(formdata=None))


def _query_step(study_key, query_id, action, form_class, step):
    session = get_session()
    study, query, role = _query(session, study_key, query_id, action)
    form = form_class()
    back = url_for("review.query_thread", study_key=study.key, query_id=query.id)
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(back)
    try:
        step(session, current_actor(role), study.key, query.id, form)
    except (Invalid, Conflict) as exc:
        flash(str(exc))
    return _back(back)


@bp.post("/studies/<study_key>/queries/<int:query_id>/answer")
@login_required
def answer_query(study_key, query_id):
    def step(session, actor, study_key, query_id, form):
        queries.answer_query(session, actor, study_key, query_id, form.text.data, form.data_changed.data)
        flash("Your answer was sent.")
    return _query_step(study_key, query_id, "query.answer", AnswerForm, step)


@bp.post("/studies/<study_key>/queries/<int:query_id>/close")
@login_required
def close_query(study_key, query_id):
    def step(session, actor, study_key, query_id, form):
        queries.close_query(session, actor, study_key, query_id, form.text.data)
        flash("The query is closed.")
    return _query_step(study_key, query_id, "query.close", CloseForm, step)


@bp.post("/studies/<study_key>/queries/<int:query_id>/reopen")
@login_required
def reopen_query(study_key, query_id):
    def step(session, actor, study_key, query_id, form):
        queries.reopen_query(session, actor, study_key, query_id, form.text.data)
        flash("The query is open again.")
    return _query_step(study_key, query_id, "query.close", ReopenForm, step)


@bp.route("/studies/<study_key>/records/<int:record_id>/queries/new", methods=["GET", "POST"])
@login_required
def raise_query(study_key, record_id):
    session = get_session()
    study, record, role = _record(session, study_key, record_id, "query.raise")
    form_def = definition(study).forms.get(record.form_key)
    names = common.form_fields(record)
    titles = {f.name: f.title for f in form_def.fields} if form_def else {}
    form = RaiseQueryForm()
    form.field.choices = [SelectChoice(f"/{n}", titles.get(n, n)) for n in names]
    if request.method == "GET" and request.args.get("field"):
        form.field.data = request.args["field"]
    if form.validate_on_submit():
        try:
            query = queries.raise_query(session, current_actor(role), study.key, record.id,
                                        form.field.data, form.text.data)
        except (Invalid, Conflict) as exc:
            _errors(form, exc)
        else:
            flash(f"Query {query.id} raised.")
            return _back(_record_url(study, record))
    status = 422 if request.method == "POST" else 200
    return render_template("review/raise_query.html", study=study, record=record, form=form,
                           next=safe_next(request.values.get("next"))), status


# --- one record: review panel, verification, signature, lock --------------------------------------

@bp.get("/studies/<study_key>/records/<int:record_id>")
@login_required
def record_review(study_key, record_id):
    session = get_session()
    study, record, _ = _record(session, study_key, record_id, "form.view")
    subject = record.subject
    spec = definition(study)
    form_def = spec.forms.get(record.form_key)
    field_states = sdv.field_states(session, [record]).get(record.id, {})
    sigs = [s for s in signatures.signatures_of(session, subject) if signatures.covers(s.row, record)]
    status = statuses_for_subjects(session, study, [subject.id]).get(record.id, record.status)
    return render_template(
        "review/record.html", study=study, record=record, subject=subject, site=subject.site,
        form_def=form_def, field_states=field_states, status=status, signatures=sigs,
        queries=queries.queries_of_record(session, record), locks=locks.lock_history(session, study, record=record),
        locked=bool(locks.active_locks(session, record)), verifications=sdv.verification_rows(session, record),
        verify_form=VerifyForm(formdata=None), lock_form=LockForm(formdata=None),
        unlock_form=UnlockForm(formdata=None))


@bp.post("/studies/<study_key>/records/<int:record_id>/verify")
@login_required
def verify_record(study_key, record_id):
    session = get_session()
    study, record, role = _record(session, study_key, record_id, "form.verify")
    form = VerifyForm()
    if form.validate_on_submit():
        fields = [f for f in form.field.data or [] if f] or None
        try:
            done = sdv.verify(session, current_actor(role), study.key, record.id, fields)
        except (Invalid, Conflict) as exc:
            for pointer, message in getattr(exc, "errors", None) or [("", str(exc))]:
                flash(f"{pointer} {message}".strip())
        else:
            flash(f"Verified: {', '.join(p.lstrip('/') for p in done)}." if done else "Already verified.")
    else:
        _flash_form_errors(form)
    return _back(_record_url(study, record))


def _sign_page(session, study, subject, role, scope, records, record=None, visit_key=None):
    form = SignForm()
    status = 200
    if form.validate_on_submit():
        try:
            signatures.sign(session, current_actor(role), study.key, subject.key, scope, form.password.data,
                            record_id=record.id if record else None, visit_key=visit_key, policy=_policy())
        except (Invalid, Conflict) as exc:
            _errors(form, exc)
            status = exc.status
        else:
            flash("Signed.")
            default = (_record_url(study, record) if record else
                       url_for("review.subject_review", study_key=study.key, subject_key=subject.key))
            return _back(default)
    elif request.method == "POST":
        status = 422
    blocking = signatures.unsigned_forms(session, study, subject, scope, records, visit_key)
    return render_template("review/sign.html", study=study, subject=subject, scope=scope, records=records,
                           record=record, visit_key=visit_key, form=form, blocking=blocking,
                           meaning=signatures.MEANINGS[signatures.Scope(scope)],
                           next=safe_next(request.values.get("next"))), status


@bp.route("/studies/<study_key>/records/<int:record_id>/sign", methods=["GET", "POST"])
@login_required
def sign_record(study_key, record_id):
    session = get_session()
    study, record, role = _record(session, study_key, record_id, "form.sign")
    return _sign_page(session, study, record.subject, role, "form", [record], record=record)


@bp.route("/studies/<study_key>/subjects/<subject_key>/visits/<visit_key>/sign", methods=["GET", "POST"])
@login_required
def sign_visit(study_key, subject_key, visit_key):
    session = get_session()
    study, subject, role = _subject(session, study_key, subject_key, "form.sign")
    records = signatures.records_in_scope(session, subject, signatures.Scope.VISIT, visit_key=visit_key)
    if not records and definition(study).visit(visit_key) is None:
        raise NotFound("not found")
    return _sign_page(session, study, subject, role, "visit", records, visit_key=visit_key)


@bp.route("/studies/<study_key>/subjects/<subject_key>/sign", methods=["GET", "POST"])
@login_required
def sign_casebook(study_key, subject_key):
    session = get_session()
    study, subject, role = _subject(session, study_key, subject_key, "form.sign")
    records = signatures.records_in_scope(session, subject, signatures.Scope.CASEBOOK)
    return _sign_page(session, study, subject, role, "casebook", records)


def _lock_step(role, scope, default, unlock, **target):
    form = UnlockForm() if unlock else LockForm()
    if form.validate_on_submit():
        try:
            (locks.unlock if unlock else locks.lock)(get_session(), current_actor(role), target.pop("study_key"),
                                                     scope, reason=form.reason.data, **target)
        except (Invalid, Conflict, NotFound) as exc:
            flash(str(exc))
        else:
            flash(f"The {scope} is {'unlocked' if unlock else 'locked'}.")
    else:
        _flash_form_errors(form)
    return _back(default)


@bp.post("/studies/<study_key>/records/<int:record_id>/lock")
@login_required
def lock_record(study_key, record_id):
    study, record, role = _record(get_session(), study_key, record_id, "form.lock")
    return _lock_step(role, "form", _record_url(study, record), False, study_key=study.key, record_id=record.id)


@bp.post("/studies/<study_key>/records/<int:record_id>/unlock")
@login_required
def unlock_record(study_key, record_id):
    study, record, role = _record(get_session(), study_key, record_id, "form.lock")
    return _lock_step(role, "form", _record_url(study, record), True, study_key=study.key, record_id=record.id)


@bp.post("/studies/<study_key>/subjects/<subject_key>/lock")
@login_required
def lock_subject(study_key, subject_key):
    study, subject, role = _subject(get_session(), study_key, subject_key, "form.lock")
    back = url_for("review.subject_review", study_key=study.key, subject_key=subject.key)
    return _lock_step(role, "subject", back, False, study_key=study.key, subject_key=subject.key)


@bp.post("/studies/<study_key>/subjects/<subject_key>/unlock")
@login_required
def unlock_subject(study_key, subject_key):
    study, subject, role = _subject(get_session(), study_key, subject_key, "form.lock")
    back = url_for("review.subject_review", study_key=study.key, subject_key=subject.key)
    return _lock_step(role, "subject", back, True, study_key=study.key, subject_key=subject.key)


@bp.route("/studies/<study_key>/lock", methods=["GET", "POST"])
@login_required
def lock_study(study_key):
    session = get_session()
    study, role = _study(session, study_key, "study.lock")
    if request.method == "POST":
        return _lock_step(role, "study", url_for("review.lock_study", study_key=study.key), False,
                          study_key=study.key)
    return render_template("review/study_lock.html", study=study, locks=locks.lock_history(session, study),
                           locked=bool(locks.active_locks(session, study)),
                           lock_form=LockForm(formdata=None), unlock_form=UnlockForm(formdata=None))


@bp.post("/studies/<study_key>/unlock")
@login_required
def unlock_study(study_key):
    study, role = _study(get_session(), study_key, "study.lock")
    return _lock_step(role, "study", url_for("review.lock_study", study_key=study.key), True,
                      study_key=study.key)


# --- one subject: statuses, signatures, locks -------------------------------------------------------

@bp.get("/studies/<study_key>/subjects/<subject_key>/review")
@login_required
def subject_review(study_key, subject_key):
    session = get_session()
    study, subject, _ = _subject(session, study_key, subject_key, "form.view")
    spec = definition(study)
    records = sorted(signatures.records_in_scope(session, subject, signatures.Scope.CASEBOOK),
                     key=lambda r: (r.visit_key, r.form_key, r.seq))
    derived = statuses_for_subjects(session, study, [subject.id])
    counts = queries.counts_by_subject(session, [subject.id]).get(subject.id, {})
    visits = [v for v in spec.visits if any(r.visit_key == v.id for r in records)]
    return render_template(
        "review/subject.html", study=study, subject=subject, site=subject.site, spec=spec, records=records,
        statuses={r.id: derived.get(r.id, r.status) for r in records}, visits=visits, query_counts=counts,
        signatures=signatures.signatures_of(session, subject, records),
        locks=locks.lock_history(session, study, subject=subject),
        locked=bool(locks.active_locks(session, subject)),
        lock_form=LockForm(formdata=None), unlock_form=UnlockForm(formdata=None))
