"""Bearer-token authentication for JSON API routes: ``Authorization: Bearer <token>``, nothing else.

Only the token authenticates here, never the browser's session cookie: the API routes are exempt
from CSRF, so accepting cookies would let another web site drive them through a signed-in user's
browser. Reusable by any API blueprint::

    @bp.get("/things")
    @bearer_required
    def things():
        user = g.api_user
"""
import functools

from flask import g, request

from ecrf.actor import Actor
from ecrf.auth.accounts import user_for_token
from ecrf.db import get_session
from ecrf.web.auth import request_context
from ecrf.web.errors import render_error


def bearer_token():
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_user():
    """The active user whose unrevoked token the request carries, or None."""
    token = bearer_token()
    return user_for_token(get_session(), token) if token else None


def bearer_required(view):
    """Answer 401 (JSON, with ``WWW-Authenticate``) unless a valid token is sent; else set
    ``g.api_user`` and call the view."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = bearer_user()
        if user is None:
            body, status = render_error(401, "a valid API token is required (Authorization: Bearer <token>)")
            body.headers["WWW-Authenticate"] = 'Bearer realm="ecrf"'
            return body, status
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper


def api_actor(role=None):
    """The token's user acting through the API, for services and the audit log."""
    return Actor.for_user(g.api_user, request_context("api"), role)
