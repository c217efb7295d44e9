"""Bearer-token authentication for /api/: a token acts with its user's roles and sites."""
import functools

from flask import g, request
from flask_login import current_user

from ecrf.auth.accounts import user_for_token
from ecrf.db import get_session
from ecrf.web.errors import render_error


def api_user():
    """The user of the request: the bearer token's user, else the signed-in page user, else None."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return user_for_token(get_session(), header[7:].strip())
    if current_user.is_authenticated:
        return current_user.user
    return None


def token_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = api_user()
        if user is None:
            response = render_error(401, "a valid API token is required (Authorization: Bearer <token>)")
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="ecrf"'
            return response
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper
