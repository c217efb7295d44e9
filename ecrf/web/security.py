"""Response headers every page gets: a strict CSP without inline script, no framing, and no-store
on pages that may show patient data and on every API answer (API callers are not ``current_user``)."""
from flask import request
from flask_login import current_user

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def init_app(app):
    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if current_user.is_authenticated or request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response
