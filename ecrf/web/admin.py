"""Administration screens: users and their roles. Only a study's administrators use them, and an
administrator sees and changes only what concerns the studies they administer. The same account
services as ``ecrf user …`` and ``ecrf role …``; every change is audited; users are deactivated,
never deleted."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from audit import Action
from ecrf import audit_view
from ecrf.auth import accounts, permissions
from ecrf.db import get_session
from ecrf.errors import Conflict, EcrfError, NotFound, PermissionDenied
from ecrf.models import ROLES
from ecrf.web.audit import export_response
from ecrf.web.auth import current_actor
from ecrf.web.input_guard import number_arg

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLE_LABELS = {"admin": "Administrator", "investigator": "Investigator", "site_staff": "Site staff",
               "monitor": "Monitor", "data_manager": "Data manager", "sponsor": "Sponsor",
               "pharmacist": "Pharmacist (unblinded)"}


class CreateUserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    name = StringField("Full name (printed on signatures)", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("First password (to be changed at first sign-in)",
                             validators=[DataRequired(), Length(max=1000)])


class GrantForm(FlaskForm):
    study = SelectField("Study", validators=[DataRequired()])
    role = SelectField("Role", choices=[SelectChoice(r, ROLE_LABELS.get(r, r)) for r in ROLES], validators=[DataRequired()])
    sites = StringField("Sites (ids separated by commas; empty: all sites)", validators=[Optional(), Length(max=500)])


class RevokeForm(FlaskForm):
    study = StringField(validators=[DataRequired(), Length(max=64)])
    role = StringField(validators=[DataRequired(), Length(max=32)])
    site = StringField(validators=[Optional(), Length(max=32)])


class DeactivateForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])


def _admin_studies(session):
    """The studies the signed-in user administers (403 when none)."""
    ids = permissions.require_somewhere(session, current_user.user, "users.manage")
    return accounts.studies_by_id(session, ids)


def _visible_user(session, username, studies):
    try:
        user = accounts.get_user(session, username)
    except NotFound:
        raise NotFound("not found") from None
    if not accounts.visible_to_admin(session, user, {s.id for s in studies}):
        exc = permissions.NotVisible("not found")
        exc.action, exc.study, exc.site = "users.manage", None, None
        raise exc
    return user


def _study_for(session, studies, key):
    """One of the administered studies, by key; a tampered key is refused like any other."""
    study = next((s for s in studies if s.key == key), None)
    if study is None:
        exc = permissions.NotVisible("not found")
        exc.action, exc.study, exc.site = "users.manage", None, None
        raise exc
    permissions.require(session, current_user.user, "users.manage", study)
    return study


def _flash_errors(form):
    for name, messages in form.errors.items():
        for message in messages:
            flash(f"{getattr(form, name).label.text or name}: {message}")


def _user_page(username):
    return redirect(url_for("admin.user", username=username))


@bp.route("/users", methods=["GET", "POST"])
@login_required
def users():
    session = get_session()
    studies = _admin_studies(session)
    form = CreateUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(session, current_actor("admin"), form.username.data.strip(),
                                        form.password.data, name=form.name.data,
                                        must_change_password=True)
        except (EcrfError,) as exc:
            field = form.password if "password" in str(exc) else form.username
            field.errors = list(field.errors) + [str(exc)]
        else:
            flash(f"User {user.username} created; they choose their own password at first sign-in.")
            return _user_page(user.username)
    rows = accounts.users_for_admin(session, [s.id for s in studies])
    keys = {s.key for s in studies}
    grants = {u.id: [g for g in accounts.user_grants(session, u) if g[0] in keys] for u in rows}
    return render_template("admin/users.html", users=rows, grants=grants, form=form, studies=studies,
                           labels=ROLE_LABELS)


#: The actions of events that belong to no study (the account events page offers these).
ACCOUNT_ACTIONS = tuple(str(a) for a in (Action.LOGIN, Action.LOGOUT, Action.LOGIN_FAILED,
                                         Action.LOCKOUT, Action.USER, Action.TOKEN,
                                         Action.PERMISSION_DENIED, Action.EXPORT))


@bp.get("/audit")
@login_required
def account_events():
    """Sign-ins, sign-outs, failed sign-ins, lockouts and account changes of the users this
    administrator manages: the part of the audit trail that belongs to no study."""
    session = get_session()
    scope = audit_view.account_scope_for(session, current_user.user)
    filters = audit_view.AuditFilters.from_mapping(request.args)
    page = audit_view.query_events(session, scope, filters, before=number_arg("before"),
                                   after=number_arg("after"))
    return render_template("admin/audit.html", page=page, filters=filters, params=filters.params(),
                           actions=ACCOUNT_ACTIONS)


@bp.get("/audit/export")
@login_required
def account_events_export():
    session = get_session()
    return export_response(session, audit_view.account_scope_for(session, current_user.user),
                           "audit-accounts")


@bp.get("/users/<username>")
@login_required
def user(username):
    session = get_session()
    studies = _admin_studies(session)
    target = _visible_user(session, username, studies)
    keys = {s.key for s in studies}
    all_grants = accounts.user_grants(session, target)
    grant_form = GrantForm(formdata=None)
    grant_form.study.choices = [SelectChoice(s.key, f"{s.key} {s.title}") for s in studies]
    return render_template("admin/user.html", target=target, studies=studies,
                           grants=[g for g in all_grants if g[0] in keys],
                           elsewhere=any(g[0] not in keys for g in all_grants), labels=ROLE_LABELS,
                           grant_form=grant_form, revoke_form=RevokeForm(formdata=None),
                           deactivate_form=DeactivateForm(formdata=None))


@bp.post("/users/<username>/roles")
@login_required
def grant(username):
    session = get_session()
    studies = _admin_studies(session)
    target = _visible_user(session, username, studies)
    form = GrantForm()
    form.study.choices = [SelectChoice(s.key) for s in studies]
    if form.validate_on_submit():
        study = _study_for(session, studies, form.study.data)
        sites = [s.strip() for s in (form.sites.data or "").split(",") if s.strip()]
        try:
            done = accounts.grant_role(session, current_actor("admin"), target.username, study.key,
                                       form.role.data, sites)
        except EcrfError as exc:
            flash(str(exc))
        else:
            flash(f"{ROLE_LABELS.get(form.role.data)} in {study.key} at {', '.join(sites) or 'all sites'}"
                  + ("" if done else " (already held)") + ".")
    else:
        _flash_errors(form)
    return _user_page(target.username)


@bp.post("/users/<username>/roles/revoke")
@login_required
def revoke(username):
    session = get_session()
    studies = _admin_studies(session)
    target = _visible_user(session, username, studies)
    form = RevokeForm()
    if form.validate_on_submit():
        study = _study_for(session, studies, form.study.data)
        try:
            accounts.revoke_role(session, current_actor("admin"), target.username, study.key, form.role.data,
                                 [form.site.data] if form.site.data else [])
        except EcrfError as exc:
            flash(str(exc))
        else:
            flash(f"{ROLE_LABELS.get(form.role.data, form.role.data)} revoked in {study.key}.")
    else:
        _flash_errors(form)
    return _user_page(target.username)


@bp.post("/users/<username>/deactivate")
@login_required
def deactivate(username):
    session = get_session()
    studies = _admin_studies(session)
    target = _visible_user(session, username, studies)
    form = DeactivateForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return _user_page(target.username)
    if target.id == current_user.id:
        raise Conflict("you cannot deactivate yourself; ask another administrator")
    if accounts.active_study_ids(session, target) - {s.id for s in studies}:
        exc = PermissionDenied("this user also works on studies you do not administer; "
                               "their administrators must revoke those roles first")
        exc.action, exc.study, exc.site = "users.manage", None, None
        raise exc
    try:
        accounts.deactivate_user(session, current_actor("admin"), target.username, form.reason.data.strip())
    except EcrfError as exc:
        flash(str(exc))
    else:
        flash(f"User {target.username} is deactivated: their sessions and API tokens no longer work.")
    return _user_page(target.username)
