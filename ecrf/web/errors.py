"""Error pages: every refusal is a 4xx page with a message (JSON under /api/), never a 500 for input."""
from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ecrf.errors import EcrfError


def _wants_json():
    return request.path.startswith("/api/")


def render_error(status, message, errors=()):
    if _wants_json():
        body = {"error": message}
        if errors:
            body["errors"] = [{"pointer": p, "message": m} for p, m in errors]
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


def init_app(app):
    @app.errorhandler(EcrfError)
    def _domain(exc):
        return render_error(exc.status, str(exc), getattr(exc, "errors", ()))

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return render_error(400, "The form expired or was not sent by this site; reload and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc):
        return render_error(exc.code or 500, exc.description or exc.name)
