"""Sign in and out, forced password change, the idle timeout and the session's user."""
import datetime as dt
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from audit import RequestContext
from ecrf.actor import Actor
from ecrf.auth import accounts
from ecrf.auth.login import REFUSED, LoginPolicy, authenticate, record_logout
from ecrf.db import get_session, utcnow
from ecrf.errors import Invalid
from ecrf.models import User

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see this page."
login_manager.session_protection = "strong"


class SessionUser(UserMixin):
    """The signed-in user; its id carries the session epoch, so a deactivation or password change
    ends every other session of that user."""

    def __init__(self, user):
        self.user = user

    def get_id(self):
        return f"{self.user.id}:{self.user.session_epoch}"

    def __getattr__(self, name):
        return getattr(self.user, name)


@login_manager.user_loader
def _load_user(user_id):
    try:
        uid, epoch = (int(part) for part in user_id.split(":"))
    except (ValueError, AttributeError):
        return None
    user = get_session().get(User, uid)
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    return SessionUser(user)


def request_context(channel="page"):
    return RequestContext(channel=channel, ip=request.remote_addr,
                          user_agent=request.headers.get("User-Agent"))


def current_actor(role=None):
    return Actor.for_user(current_user.user, request_context(), role)


def safe_next(target):
    """Only a path on this site (no scheme, no host, no '//') may be a redirect target."""
    if not target or not isinstance(target, str):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1000)])
    new = PasswordField("New password", validators=[DataRequired(), Length(max=1000)])
    confirm = PasswordField("New password again",
                            validators=[DataRequired(), EqualTo("new", "The two passwords differ.")])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    if form.validate_on_submit():
        policy = LoginPolicy(current_app.config["LOCKOUT_ATTEMPTS"],
                             dt.timedelta(minutes=current_app.config["LOCKOUT_MINUTES"]))
        user = authenticate(get_session(), form.username.data, form.password.data,
                            request_context(), policy)
        if user is None:
            form.password.errors = [REFUSED]
            return render_template("auth/login.html", form=form, next=next_url), 401
        session.clear()  # a new session at sign-in: no fixation
        login_user(SessionUser(user))
        session.permanent = True
        session["seen"] = utcnow().timestamp()
        if user.must_change_password:
            return redirect(url_for("auth.change_password", next=next_url))
        return redirect(next_url or url_for("studies.index"))
    return render_template("auth/login.html", form=form, next=next_url)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    record_logout(get_session(), current_user.user, request_context())
    logout_user()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    from ecrf.auth.passwords import verify_password

    form = ChangePasswordForm()
    next_url = safe_next(request.values.get("next"))
    if form.validate_on_submit():
        if not verify_password(current_user.password_hash, form.current.data):
            form.current.errors = ["This is not your current password."]
        else:
            try:
                user = accounts.update_user(get_session(), current_actor(), current_user.username,
                                            password=form.new.data, must_change_password=False)
            except Invalid as exc:
                form.new.errors = [str(exc)]
            else:
                login_user(SessionUser(user))
                flash("Your password was changed.")
                return redirect(next_url or url_for("studies.index"))
    return render_template("auth/change_password.html", form=form, next=next_url)


def init_app(app):
    login_manager.init_app(app)

    @app.before_request
    def _idle_timeout():
        if not current_user.is_authenticated:
            return None
        now = utcnow().timestamp()
        idle = app.config["SESSION_IDLE_MINUTES"] * 60
        if now - session.get("seen", now) > idle:
            logout_user()
            session.clear()
            flash("Your session ended after a period of inactivity; please sign in again.")
            if request.path.startswith("/api/"):
                return None
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        session["seen"] = now
        if current_user.must_change_password and request.endpoint not in (
                "auth.change_password", "auth.logout", "static"):
            return redirect(url_for("auth.change_password", next=request.full_path.rstrip("?")))
        return None
