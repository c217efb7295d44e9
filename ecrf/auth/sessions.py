"""Browser sessions kept in the database (``ecrf.models.WebSession``): start, find, save, end.

The cookie carries a random id (``new_token``); the database stores only its sha256, so a copy of
the table lets nobody in. A session ends for good (``ended_at``): at sign-out, sign-out everywhere,
password change, deactivation, after the idle timeout, and when a sign-in replaces it with a new id
(no fixation). Every check reads the database, so an ended session is refused by every worker
process and app server at once. Plain functions on a SQLAlchemy session; ``ecrf.web.sessions`` is
the Flask side.
"""
import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select, update

from audit import Action, append
from ecrf.db import utcnow, write_transaction
from ecrf.models import WebSession

#: last_seen_at is written at most this often (the idle timeout is minutes; a write per request is not
#: worth it).
TOUCH_EVERY = dt.timedelta(seconds=45)
#: The longest a session id may be in a cookie (``new_token`` makes 43 characters).
MAX_TOKEN = 100


def new_token():
    return secrets.token_urlsafe(32)


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def find_live(session, token):
    """The session row whose id is ``token``, when it has not ended; else None."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        return None
    return session.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token),
                                                   WebSession.ended_at.is_(None)))


def is_idle(row, idle, now=None):
    return (now or utcnow()) - row.last_seen_at > idle


def start(session, data, user_id=None, *, prune_before=None):
    """A new session holding ``data`` (serialized text); returns its cookie id. Sessions that never
    signed in and were last seen before ``prune_before`` are removed on the way (they hold only a
    CSRF token and messages, and accumulate with every new visitor)."""
    token = new_token()
    now = utcnow()
    with write_transaction(session):
        if prune_before is not None:
            session.execute(delete(WebSession).where(WebSession.user_id.is_(None),
                                                     WebSession.last_seen_at < prune_before))
        session.add(WebSession(token_hash=token_hash(token), user_id=user_id, data=data,
                               created_at=now, last_seen_at=now))
    return token


def save(session, row_id, data=None, touch=False):
    """Store new ``data`` (None: unchanged) and/or note that the session was seen now. A session
    ended meanwhile (by another request) stays ended."""
    values = {}
    if data is not None:
        values["data"] = data
    if touch:
        values["last_seen_at"] = utcnow()
    if not values:
        return
    with write_transaction(session):
        session.execute(update(WebSession).where(WebSession.id == row_id, WebSession.ended_at.is_(None))
                        .values(**values))


def _end(session, where, reason):
    result = session.execute(update(WebSession).where(*where, WebSession.ended_at.is_(None))
                             .values(ended_at=utcnow(), ended_reason=reason[:32], data="{}"))
    return result.rowcount


def end(session, row_id, reason):
    """End one session (its values are dropped); True when it was live."""
    with write_transaction(session):
        return _end(session, [WebSession.id == row_id], reason) > 0


def end_user_sessions(session, user_id, reason, keep=None):
    """End every live session of a user, but ``keep`` (a row id); returns how many ended. Joins an
    open service transaction (a password change or deactivation ends them in the same commit)."""
    where = [WebSession.user_id == user_id]
    if keep is not None:
        where.append(WebSession.id != keep)
    with write_transaction(session):
        return _end(session, where, reason)


def sign_out_everywhere(session, actor, user):
    """End every session of ``user`` (the asking one too), audited as a logout; returns how many."""
    with write_transaction(session):
        count = end_user_sessions(session, user.id, "logout everywhere")
        append(session.connection(), actor.event(Action.LOGOUT, reason=f"signed out everywhere ({count} sessions)"))
    return count


def live_sessions(session, user_id):
    """The user's sessions that have not ended, newest first."""
    return list(session.scalars(select(WebSession).where(WebSession.user_id == user_id,
                                                         WebSession.ended_at.is_(None))
                                .order_by(WebSession.last_seen_at.desc())))
