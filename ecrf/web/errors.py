"""Error pages: every refusal is a 4xx page with a message (JSON under /api/), never a 500 for input;
a database that cannot serve (down, locked, read-only, full) is a 503 with ``Retry-After``."""
from flask import current_app, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from ecrf.errors import EcrfError, PermissionDenied


def _wants_json():
    return request.path.startswith("/api/")


def render_error(status, message, errors=()):
    if _wants_json():
        body = {"error": message}
        if errors:
            body["errors"] = [{"pointer": p, "message": m} for p, m in errors]
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


#: What the user reads when the database cannot serve; the transaction was rolled back whole.
UNAVAILABLE = "the database is not available; nothing was saved, try again"
#: Seconds a client is asked to wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5


def render_unavailable(exc):
    """The 503 answer for a database fault, rendered without touching the database again.

    The signed-in user cannot be loaded now (or was loaded by the failed session), so the page is
    rendered as for an anonymous visitor; the page stays out of every cache.
    """
    from ecrf.db import error_summary

    current_app.logger.warning("database not available (%s %s): %s", request.method, request.path,
                               error_summary(exc))
    g._login_user = current_app.login_manager.anonymous_user()
    response, status = render_error(503, UNAVAILABLE)
    response = current_app.make_response((response, status))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _audit_denial(exc):
    """A permission-denied event for a 403, or for the 404 the permission check gives instead of a
    403 so that ids do not leak (``permissions.NotVisible``)."""
    from flask import g
    from flask_login import current_user

    from audit import RequestContext
    from ecrf.actor import Actor
    from ecrf.auth.denials import record_denial
    from ecrf.db import get_session

    user = g.get("api_user") or (current_user.user if current_user.is_authenticated else None)
    context = RequestContext(channel="api" if _wants_json() else "page", ip=request.remote_addr,
                             user_agent=request.headers.get("User-Agent"))
    actor = Actor.for_user(user, context) if user is not None else Actor(None, "(anonymous)", None, context)
    action = getattr(exc, "action", None) or request.endpoint or "?"
    record_denial(get_session(), actor, action, getattr(exc, "study", None), getattr(exc, "site", None),
                  f"{request.method} {request.path}")


def init_app(app):
    from ecrf.auth.permissions import NotVisible

    @app.errorhandler(EcrfError)
    def _domain(exc):
        if isinstance(exc, (PermissionDenied, NotVisible)):
            _audit_denial(exc)
        return render_error(exc.status, str(exc), getattr(exc, "errors", ()))

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def _database(exc):
        from ecrf.db import database_unavailable

        if not database_unavailable(exc):
            raise exc  # a bug, not a fault of the database: the ordinary 500
        return render_unavailable(exc)

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return render_error(400, "The form expired or was not sent by this site; reload and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc):
        response = make_response(render_error(exc.code or 500, exc.description or exc.name))
        # The exception's own headers say what the client needs next: Allow on a 405,
        # WWW-Authenticate on a 401, Retry-After on a 429 or 503.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
