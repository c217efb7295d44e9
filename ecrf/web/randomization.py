"""Randomization screens: the Randomize button of a subject (with a confirmation), emergency
unblinding (reason, password, confirmation), the pharmacist's list and the balance report.

Each view loads (404), asks the permission table (403), calls one ``randomization.service`` function
and redirects; an arm reaches a page only where ``can_see_arm`` allows it.
"""
from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, TextAreaField
from wtforms.validators import DataRequired, Length

from ecrf.auth import permissions
from ecrf.capture.service import get_subject
from ecrf.db import get_session
from ecrf.errors import Conflict, Invalid, PermissionDenied
from ecrf.randomization import arm_label, can_see_arm, service
from ecrf.studies import definition, get_study
from ecrf.web.api_randomization import policy
from ecrf.web.auth import current_actor

bp = Blueprint("randomization", __name__)
SUBJECT = "/studies/<study_key>/subjects/<subject_key>"


class RandomizeForm(FlaskForm):
    confirm = BooleanField("I confirm that this subject is eligible and consented, and is to be randomized now",
                           validators=[DataRequired("tick the box to confirm")])


class UnblindForm(FlaskForm):
    reason = TextAreaField("Why the arm must be known now", validators=[DataRequired(), Length(max=2000)])
    password = PasswordField("Your password", validators=[DataRequired()])
    confirm = BooleanField("I understand that unblinding is recorded and the study's contacts are told",
                           validators=[DataRequired("tick the box to confirm")])


def _subject(study_key, subject_key, action):
    session = get_session()
    study = get_study(session, study_key)
    subject = get_subject(session, study, subject_key)
    role = permissions.require(session, current_user.user, action, study, subject.site)
    return session, study, subject, role


def _subject_url(study, subject):
    return url_for("capture.subject", study_key=study.key, subject_key=subject.key)


def subject_panel(session, study, subject):
    """What the subject page shows of randomization (for everyone who sees the page)."""
    spec = definition(study)
    if not spec.document.get("randomization"):
        return None
    user = current_user.user
    return {
        "summary": service.subject_summary(session, user, study, subject),
        "visit": spec.visit(spec.document["randomization"].get("visit", "")),
        "can_randomize": subject.state == "enrolled" and permissions.can(
            session, user, "subject.randomize", study, subject.site),
        "can_unblind": permissions.can(session, user, "subject.unblind", study, subject.site)
        and not can_see_arm(session, user, study, subject),
        "form": RandomizeForm(formdata=None),
    }


@bp.post(SUBJECT + "/randomize")
@login_required
def randomize(study_key, subject_key):
    session, study, subject, role = _subject(study_key, subject_key, "subject.randomize")
    form = RandomizeForm()
    if not form.validate_on_submit():
        flash("Tick the box to confirm the randomization; nothing was done.")
        return redirect(_subject_url(study, subject))
    try:
        row = service.randomize(session, current_actor(role), study_key, subject_key)
    except (Conflict, Invalid) as exc:
        flash(f"Not randomized: {exc}")
    else:
        flash(f"Subject {subject.key} randomized: number {row.randomization_number}.")
    return redirect(_subject_url(study, subject))


@bp.route(SUBJECT + "/unblind", methods=["GET", "POST"])
@login_required
def unblind(study_key, subject_key):
    session, study, subject, role = _subject(study_key, subject_key, "subject.unblind")
    form = UnblindForm()
    status = 200
    if form.validate_on_submit():
        try:
            _, delivery = service.emergency_unblind(
                session, current_actor(role), current_user.user, study_key, subject_key, form.reason.data,
                form.password.data, policy(), current_app.config)
        except (Conflict, Invalid) as exc:
            flash(f"Not unblinded: {exc}")
            status = exc.status
        else:
            flash("Unblinded: the arm is shown on the subject's page, to you only."
                  + (f" Contacts e-mailed: {delivery.status}." if delivery else ""))
            return redirect(_subject_url(study, subject))
    elif form.is_submitted():
        status = 422
    summary = service.subject_summary(session, current_user.user, study, subject)
    return render_template("randomization/unblind.html", study=study, subject=subject, form=form,
                           summary=summary), status


@bp.get("/studies/<study_key>/pharmacy")
@login_required
def pharmacy(study_key):
    session, study = _unblinded(study_key, "randomization.pharmacy")
    site_ids = permissions.visible_site_ids(session, current_user.user, "randomization.pharmacy", study)
    rows = [(a, arm_label(study, a.arm)) for a in service.allocations(session, study, site_ids)]
    return render_template("randomization/pharmacy.html", study=study, rows=rows)


@bp.get("/studies/<study_key>/randomization/balance")
@login_required
def balance(study_key):
    session, study = _unblinded(study_key, "randomization.balance")
    report = service.balance(session, study)
    labels = {arm: arm_label(study, arm) for arm in report.arms}
    return render_template("randomization/balance.html", study=study, report=report, labels=labels)


def _unblinded(study_key, action):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, current_user.user, action, study)
    if not can_see_arm(session, current_user.user, study):
        exc = PermissionDenied("this page shows arms: your role is blinded in this study")
        exc.action, exc.study, exc.site = action, study.key, None
        raise exc
    return session, study
