"""Error pages: every refusal is a 4xx page with a message (JSON under /api/), never a 500 for input."""
from flask import jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
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
