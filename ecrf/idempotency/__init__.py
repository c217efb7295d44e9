"""Idempotency keys: a client that lost the answer to a POST retries it with the same
``Idempotency-Key`` and gets the first answer again, while nothing is created twice.

A key belongs to one user and stands for one request (method, path and body). The answer to the
first request is stored under it in the same transaction as what that request created, so a crash
never leaves a key without its effect, nor an effect without its key. Keys are kept for
``KEEP`` (24 hours); after that the same key starts a new request.

Called inside a ``write_transaction``::

    stored = claim(session, user_id, key, request_hash(method, path, body))
    if stored is None:
        ... create the thing, build the answer ...
        remember(session, user_id, key, status, body, location)   # or forget() if it failed
"""
import dataclasses
import datetime as dt
import hashlib
import json
import re

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ecrf.db import utcnow
from ecrf.errors import EcrfError
from ecrf.models import IdempotencyKey

#: How long a key's answer is kept and replayed.
KEEP = dt.timedelta(hours=24)
#: 1-255 visible ASCII characters (a UUID is the usual choice).
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class BadKey(EcrfError):
    status = 400


class KeyReused(EcrfError):
    """The key was sent before with another request: its answer does not belong to this one."""

    status = 422


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: str
    location: str | None


def check_key(key):
    """Refuse a key that is not 1-255 visible ASCII characters."""
    if not KEY.match(key):
        raise BadKey("an Idempotency-Key is 1-255 visible ASCII characters (a UUID, say)")
    return key


def request_hash(method, path, body):
    """SHA-256 of a request: method, path, and the body as canonical JSON (the same document with
    its keys in another order or other spacing is the same request), or as bytes if not JSON."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), b"\n", path.encode(), b"\n", canonical):
        digest.update(part)
    return digest.hexdigest()


def _insert(session):
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def claim(session, user_id, key, fingerprint, now=None):
    """The stored answer of an earlier request with this key, or None once the key is claimed for
    this request (then ``remember`` or ``forget`` it in the same transaction).

    The claim is an INSERT ... ON CONFLICT DO NOTHING: a second request with the same key waits on
    PostgreSQL until the first one's transaction ends, then finds its answer (SQLite's write lock
    serialises them anyway). Raises KeyReused when the key was used for a different request.
    """
    now = now or utcnow()
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                 IdempotencyKey.created_at < now - KEEP))
    claimed = session.execute(
        _insert(session)(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=fingerprint, status=0, body="", created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.id)).scalar()
    if claimed is not None:
        return None
    row = session.execute(select(IdempotencyKey.request_hash, IdempotencyKey.status, IdempotencyKey.body,
                                 IdempotencyKey.location)
                          .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)).one()
    if row.request_hash != fingerprint:
        raise KeyReused("this Idempotency-Key was already used for a different request (another "
                        "path or body); use a new key for a new request")
    return Answer(row.status, row.body, row.location)


def remember(session, user_id, key, answer):
    """Store the answer of the request that claimed ``key``."""
    session.execute(update(IdempotencyKey)
                    .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                    .values(status=answer.status, body=answer.body, location=answer.location))


def forget(session, user_id, key):
    """Release a claimed key whose request created nothing (it may be retried as new)."""
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                 IdempotencyKey.key == key))
