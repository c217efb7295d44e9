"""``Idempotency-Key`` on API POSTs that create something (``ecrf.idempotency`` keeps the keys).

    @bp.post("/things")
    @bearer_required
    @idempotent
    def create_thing(): ...

Without the header the view runs as always. With it, the view runs inside one transaction together
with the key's claim and its stored answer: a retry of the same request (same user, key, method,
path and body) gets the first answer again (status, body and Location, plus
``Idempotent-Replayed: true``) and creates nothing; the same key with another request is a 422.
Only a 2xx answer is kept: a refused request created nothing and may be retried as new.
"""
import functools

from flask import Response, current_app, g, request

from ecrf import idempotency
from ecrf.db import get_session, write_transaction

HEADER = "Idempotency-Key"


def idempotent(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST":
            return view(*args, **kwargs)
        idempotency.check_key(key)
        session, user_id = get_session(), g.api_user.id
        fingerprint = idempotency.request_hash(request.method, request.path, request.get_data())
        with write_transaction(session):
            stored = idempotency.claim(session, user_id, key, fingerprint)
            if stored is not None:
                return _replay(stored)
            response = current_app.make_response(view(*args, **kwargs))
            if 200 <= response.status_code < 300:
                idempotency.remember(session, user_id, key, idempotency.Answer(
                    response.status_code, response.get_data(as_text=True), response.headers.get("Location")))
            else:
                idempotency.forget(session, user_id, key)
        return response

    return wrapper


def _replay(answer):
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    if answer.location:
        response.headers["Location"] = answer.location
    return response
