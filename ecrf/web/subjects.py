"""Subject screens: add a subject, withdraw or complete one, enter visit dates, add an unscheduled
visit. Each view loads (404), checks the permission table (403), calls one capture service."""
from flask import Blueprint, flash, redirect, render_template
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ecrf.auth import permissions
from ecrf.capture import service, subjects, visits
from ecrf.db import get_session
from ecrf.errors import Invalid
from ecrf.studies import definition, get_study, list_sites
from ecrf.web.auth import current_actor

bp = Blueprint("subjects", __name__)

REASONS = ("Withdrawal of consent", "Adverse event", "Lost to follow-up", "Investigator decision",
           "Protocol completed", "Other")


class EnrolForm(FlaskForm):
    site = SelectField("Site", validators=[DataRequired()])
    subject = StringField("Subject id (leave empty to generate)", validators=[Optional(), Length(max=64)])


class StateForm(FlaskForm):
    state = SelectField("New state", choices=[SelectChoice("withdrawn", "Withdrawn"),
                                              SelectChoice("completed", "Completed the study")])
    reason = SelectField("Reason", choices=[SelectChoice(r, r) for r in REASONS])
    details = TextAreaField("Details", validators=[Length(max=2000)])


class VisitDateForm(FlaskForm):
    visit_date = DateField("Visit date", validators=[DataRequired()])
    reason = StringField("Reason for change (when correcting a date)", validators=[Length(max=500)])


class UnscheduledForm(FlaskForm):
    visit_date = DateField("Date of the unscheduled visit", validators=[DataRequired()])
    label = StringField("Why (shown as the visit's label)", validators=[Length(max=150)])


def _subject(session, study_key, subject_key, action):
    study = get_study(session, study_key)
    subject = service.get_subject(session, study, subject_key)
    role = permissions.require(session, current_user.user, action, study, subject.site)
    return study, subject, role


def _field_errors(form, exc):
    for pointer, message in exc.errors or [("", str(exc))]:
        field = getattr(form, pointer.strip("/"), None)
        if field is not None:
            field.errors = list(field.errors) + [message]
        else:
            flash(message)


@bp.route("/studies/<study_key>/subjects/new", methods=["GET", "POST"])
@login_required
def enrol(study_key):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, current_user.user, "subject.enrol", study)
    allowed = [s for s in list_sites(session, study)
               if permissions.can(session, current_user.user, "subject.enrol", study, s)]
    form = EnrolForm()
    form.site.choices = [SelectChoice(s.key, f"{s.key} {s.name}") for s in allowed]
    if form.validate_on_submit():
        role = permissions.require(session, current_user.user, "subject.enrol", study,
                                   next(s for s in allowed if s.key == form.site.data))
        try:
            subject = service.enrol_subject(session, current_actor(role), study.key, form.site.data,
                                            (form.subject.data or "").strip() or None)
        except Invalid as exc:
            _field_errors(form, exc)
        else:
            flash(f"Subject {subject.key} added ({subject.state.replace('_', ' ')}).")
            return redirect(f"/studies/{study.key}/subjects/{subject.key}")
    return render_template("subjects/enrol.html", study=study, form=form)


@bp.post("/studies/<study_key>/subjects/<subject_key>/state")
@login_required
def change_state(study_key, subject_key):
    session = get_session()
    study, subject, role = _subject(session, study_key, subject_key, "subject.state")
    form = StateForm()
    if form.validate_on_submit():
        reason = form.reason.data + (f": {form.details.data.strip()}" if form.details.data.strip() else "")
        subjects.change_state(session, current_actor(role), study.key, subject.key, form.state.data, reason)
        flash(f"Subject {subject.key} is now {form.state.data}.")
    else:
        flash("Choose a state and a reason.")
    return redirect(f"/studies/{study.key}/subjects/{subject.key}")


@bp.post("/studies/<study_key>/subjects/<subject_key>/visits/<visit_key>/date")
@login_required
def visit_date(study_key, subject_key, visit_key):
    session = get_session()
    study, subject, role = _subject(session, study_key, subject_key, "form.edit")
    form = VisitDateForm()
    if form.validate_on_submit():
        try:
            visits.set_visit_date(session, current_actor(role), study.key, subject.key, visit_key,
                                  form.visit_date.data, form.reason.data)
        except Invalid as exc:
            for _, message in exc.errors or [("", str(exc))]:
                flash(message)
        else:
            flash("Visit date saved.")
    else:
        flash("Give the visit date as YYYY-MM-DD.")
    return redirect(f"/studies/{study.key}/subjects/{subject.key}")


@bp.post("/studies/<study_key>/subjects/<subject_key>/visits/unscheduled")
@login_required
def unscheduled(study_key, subject_key):
    session = get_session()
    study, subject, role = _subject(session, study_key, subject_key, "form.edit")
    form = UnscheduledForm()
    if form.validate_on_submit():
        try:
            row = visits.add_unscheduled_visit(session, current_actor(role), study.key, subject.key,
                                               form.visit_date.data, form.label.data)
        except Invalid as exc:
            flash(str(exc))
        else:
            flash(f"{row.label} added.")
    else:
        flash("Give the date of the unscheduled visit.")
    return redirect(f"/studies/{study.key}/subjects/{subject.key}")


def panel_context(session, study, subject):
    """What the subject page shows of visits and state: schedule rows and the action forms."""
    from ecrf.capture.schedule import schedule

    spec = definition(study)
    rows = visits.subject_visits(session, subject)
    dates = {k: v.visit_date for k, v in rows.items() if v.visit_date}
    return {
        "schedule": schedule(spec, dates, subject.arm),
        "unscheduled": [v for v in rows.values() if v.unscheduled],
        "state_form": StateForm(formdata=None),
        "date_form": VisitDateForm(formdata=None),
        "unscheduled_form": UnscheduledForm(formdata=None),
        "has_unscheduled": bool(spec.document.get("unscheduled_forms")),
        "can_edit": permissions.can(session, current_user.user, "form.edit", study, subject.site),
        "can_change_state": permissions.can(session, current_user.user, "subject.state", study, subject.site),
    }


@bp.app_template_global()
def today():
    import datetime as dt

    return dt.date.today()
