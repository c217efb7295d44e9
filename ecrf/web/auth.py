"""Sign in and out, forced password change, the idle timeout and the session's user."""
import datetime as dt
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, g, has_request_context, make_response, redirect,
                   render_template, request, session, url_for)
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from audit import RequestContext
from ecrf.actor import Actor
from ecrf.auth import accounts
from ecrf.auth.login import REFUSED, LoginPolicy, authenticate, record_logout
from ecrf.auth.throttle import Throttled
from ecrf.db import get_session
from ecrf.errors import Invalid
from ecrf.models import User

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see this page."
login_manager.session_protection = "strong"


class SessionUser(UserMixin):
    """The signed-in user of a server-side session (``ecrf.web.sessions``): ending that session
    (sign-out, sign-out everywhere, password change, deactivation) signs it out everywhere."""

    def __init__(self, user):
        self.user = user

    def get_id(self):
        return str(self.user.id)

    def __getattr__(self, name):
        return getattr(self.user, name)


@login_manager.user_loader
def _load_user(user_id):
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        return None
    if getattr(session, "user_id", None) != uid:  # the stored session row names whose it is
        return None
    # The user's role grants come in the same query: every page asks the permission table.
    user = get_session().get(User, uid, options=[joinedload(User.grants)])
    if user is None or not user.active:
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
        try:
            user = authenticate(get_session(), form.username.data, form.password.data,
                                request_context(), LoginPolicy.from_settings(current_app.config))
        except Throttled as exc:
            form.password.errors = [str(exc)]
            response = make_response(render_template("auth/login.html", form=form, next=next_url), 429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        if user is None:
            form.password.errors = [REFUSED]
            return render_template("auth/login.html", form=form, next=next_url), 401
        resume = session.get("resume")  # typed values kept at a timeout (see _idle_timeout)
        session.clear()  # nothing of the anonymous session but the stash id goes on
        if resume is not None:
            session["resume"] = resume
        login_user(SessionUser(user))
        session.permanent = True
        session.renew("signed in")  # a new session id at sign-in: no fixation
        if user.must_change_password:
            return redirect(url_for("auth.change_password", next=next_url))
        return redirect(next_url or url_for("studies.index"))
    return render_template("auth/login.html", form=form, next=next_url)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    record_logout(get_session(), current_user.user, request_context())
    logout_user()
    session.end("logout")
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
                accounts.update_user(get_session(), current_actor(), current_user.username,
                                     password=form.new.data, must_change_password=False,
                                     keep_session=session.row_id)
            except Invalid as exc:
                form.new.errors = [str(exc)]
            else:
                session.renew("renewed")
                flash("Your password was changed.")
                return redirect(next_url or url_for("studies.index"))
    return render_template("auth/change_password.html", form=form, next=next_url)


@bp.route("/account")
@login_required
def account():
    """The signed-in user's account: their open sessions, sign out everywhere, change password."""
    from ecrf.auth.sessions import is_idle, live_sessions

    idle = dt.timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    rows = [row for row in live_sessions(get_session(), current_user.id) if not is_idle(row, idle)]
    return render_template("auth/account.html", sessions=rows, current=session.row_id, form=FlaskForm())


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    from ecrf.auth.sessions import sign_out_everywhere as end_all

    end_all(get_session(), current_actor(), current_user.user)
    logout_user()
    session.end("logout everywhere")
    flash("You are signed out on every device.")
    return redirect(url_for("auth.login"))


def init_app(app):
    from ecrf.web import sessions

    sessions.init_app(app)
    login_manager.init_app(app)

    @app.before_request
    def _idle_timeout():
        expired = getattr(session, "expired_user_id", None)
        if expired is not None:  # the session had timed out (ecrf.web.sessions) and has ended
            page, resume = _keep_typed_values(expired)
            if resume is not None:
                session["resume"] = resume
            flash("Your session ended after a period of inactivity; please sign in again.")
            if request.path.startswith("/api/"):
                return None
            return redirect(url_for("auth.login", next=page or request.full_path.rstrip("?")))
        if not current_user.is_authenticated:
            return None
        if current_user.must_change_password and request.endpoint not in (
                "auth.change_password", "auth.logout", "static"):
            return redirect(url_for("auth.change_password", next=request.full_path.rstrip("?")))
        _restore_typed_values()
        return None
    # The cookie outlives the idle timeout (which the server enforces through the session's
    # last_seen_at), so that a form posted after the timeout still reaches _idle_timeout, which keeps
    # what was typed; were the browser to drop the cookie first, the post would fail its CSRF check
    # and lose them.
    app.config["PERMANENT_SESSION_LIFETIME"] = max(
        app.config["PERMANENT_SESSION_LIFETIME"],
        dt.timedelta(minutes=app.config["SESSION_IDLE_MINUTES"]) + dt.timedelta(hours=12))


# --- an expired session posting a form: the typed values are not lost ----------------------------

def _page_for_post():
    """The page a timed-out POST came from: its own URL when that answers GET, else the referring
    page of this site, else None."""
    adapter = current_app.url_map.bind("")
    try:
        adapter.match(request.path, method="GET")
        return request.path
    except HTTPException:  # MethodNotAllowed, NotFound, RequestRedirect
        referrer = urlsplit(request.referrer or "")
        if referrer.netloc and referrer.netloc != request.host:
            return None
        return safe_next(referrer.path) if referrer.path else None


def _keep_typed_values(user_id):
    """At a timeout: stash a posted page form for the same user; returns (page, stash id)."""
    if request.method != "POST" or request.path.startswith("/api/") or not request.form:
        return None, None
    from ecrf.auth.stash import stash_form

    page = _page_for_post()
    if page is None:
        return None, None
    return page, stash_form(get_session(), user_id, page, request.form.items(multi=True))


def _restore_typed_values():
    """Back on the page after signing in again: forms of this request show the stashed values."""
    if request.method != "GET" or "resume" not in session:
        return
    from ecrf.auth.stash import take_stash

    fields = take_stash(get_session(), session.get("resume"), current_user.id, request.path)
    if fields is None:
        return
    session.pop("resume", None)
    g.ecrf_resumed_form = MultiDict([tuple(pair) for pair in fields])
    flash("Your session had ended while you were entering this form: what you typed is shown again. "
          "Check it and save.")


def resumed_form():
    """The values typed into this page's form before a session timeout, as a MultiDict of what was
    posted, on the first visit after signing in again; else None. FlaskForm forms fill themselves
    from it (below); a page that reads ``request.form`` itself can show these the same way."""
    return g.get("ecrf_resumed_form") if has_request_context() else None


def _wrap_formdata(self, form, formdata):
    """FlaskForm's formdata, or on the page a timed-out form came from, the values typed there
    (shown, not submitted: the request is a GET, so nothing validates or saves by itself)."""
    if formdata is _Auto and has_request_context() and request.method == "GET":
        resumed = resumed_form()
        if resumed is not None:
            return resumed
    return _flask_wrap_formdata(self, form, formdata)


_wrap_formdata.ecrf = True
if not getattr(FlaskForm.Meta.wrap_formdata, "ecrf", False):
    _flask_wrap_formdata = FlaskForm.Meta.wrap_formdata
    FlaskForm.Meta.wrap_formdata = _wrap_formdata


@bp.app_template_global()
def may_manage_users():
    """Whether the signed-in user administers users in any study (shows the Users link)."""
    from ecrf.auth import permissions

    return current_user.is_authenticated and bool(
        permissions.studies_where(get_session(), current_user.user, "users.manage"))
