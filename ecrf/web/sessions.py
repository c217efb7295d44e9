"""Flask's session kept in the database: the cookie carries only a random id (``ecrf.auth.sessions``).

``ServerSession`` is the dict Flask, Flask-Login and Flask-WTF (its CSRF token) read and write;
``DatabaseSessionInterface`` loads it from its row when the request starts and stores it when the
response goes, writing only what changed (and ``last_seen_at`` at most every ``TOUCH_EVERY``). A
session past the idle timeout ends when it is next used: the request sees a new session that has
not signed in, keeping only the CSRF token and messages, so that a form posted after the timeout
still passes its CSRF check and what was typed is kept (``ecrf.web.auth``), and knows whose it was
(``expired_user_id``).
"""
import datetime as dt

from flask import current_app, request, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.datastructures import CallbackDict

from ecrf.auth import sessions as store
from ecrf.db import get_session, utcnow

#: Errors of a database that cannot serve (down, locked, read-only, full, no pooled connection).
DATABASE_FAULTS = (DBAPIError, PoolTimeout)
#: Flask-Login's keys: what makes a session signed in. They do not survive the idle timeout.
SIGN_IN_KEYS = frozenset({"_user_id", "_fresh", "_id", "_remember", "_remember_seconds"})


class ServerSession(CallbackDict, SessionMixin):
    """A session's values, with the id of its row (None until it is first stored)."""

    def __init__(self, initial=None, row_id=None, user_id=None, touch=False, expired_user_id=None):
        def on_update(self):
            self.modified = True

        super().__init__(initial, on_update)
        self.row_id, self.user_id, self.touch = row_id, user_id, touch
        #: The user whose session just timed out (this request only), for keeping typed values.
        self.expired_user_id = expired_user_id
        self.modified = False
        #: Why the stored row ends when this response goes (a new id is issued if values remain).
        self.end_reason = None
        #: The database error that kept the session from being read (see ``_raise_fault``).
        self.fault = None

    def renew(self, reason):
        """Give the session a new id when the response goes, keeping its values; the old id ends
        (``reason``). Done at sign-in: an id known before it is worthless after."""
        self.end_reason = reason
        self.modified = True

    def end(self, reason):
        """End the session on the server (its values go); anything stored after this (a flashed
        message) goes into a new session that has not signed in."""
        self.clear()
        self.renew(reason)


class DatabaseSessionInterface(SessionInterface):
    serializer = TaggedJSONSerializer()

    def open_session(self, app, request):
        token = request.cookies.get(self.get_cookie_name(app))
        if not token:
            return ServerSession()
        try:
            return self._open(app, token)
        except DATABASE_FAULTS as exc:
            # Raised again by the first before_request (_raise_fault), where the error handlers
            # answer it (503) as for any request that finds the database unavailable.
            failed = ServerSession()
            failed.fault = exc
            return failed

    def _open(self, app, token):
        session = get_session()
        row = store.find_live(session, token)
        if row is None:
            return ServerSession()
        try:
            data = self.serializer.loads(row.data)
        except ValueError:
            data = {}
        now = utcnow()
        idle = dt.timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
        if row.user_id is None and store.is_idle(row, app.permanent_session_lifetime, now):
            store.end(session, row.id, "expired")
            return ServerSession()
        if row.user_id is not None and store.is_idle(row, idle, now):
            store.end(session, row.id, "idle")
            kept = ServerSession({k: v for k, v in data.items() if k not in SIGN_IN_KEYS},
                                 expired_user_id=row.user_id)
            kept.modified = bool(kept)
            return kept
        return ServerSession(data, row_id=row.id, user_id=row.user_id,
                             touch=now - row.last_seen_at > store.TOUCH_EVERY)

    def save_session(self, app, session, response):
        if session.fault is not None:
            return
        try:
            self._save(app, session, response)
        except DATABASE_FAULTS as exc:
            if session.row_id is not None and session.end_reason is None and (
                    not session.modified or request.method in ("GET", "HEAD")):
                # Only last_seen_at was to be written, or a read of a stored session changed it
                # (a message shown, a CSRF token made): the session and the response stand. A new
                # session, a sign-in or a sign-out that cannot be stored is a 503.
                app.logger.warning("session not stored: %s", exc)
                return
            _answer_unavailable(response, exc)

    def _save(self, app, session, response):
        name = self.get_cookie_name(app)
        session_db = _writer()
        if session.row_id is not None and session.end_reason is not None:
            store.end(session_db, session.row_id, session.end_reason)
            session.row_id = None
        signed_in = _user_id(session)
        if session.row_id is not None and signed_in != session.user_id:
            # Whoever the session belongs to changed without a sign-in (never expected): a new id.
            store.end(session_db, session.row_id, "renewed")
            session.row_id = None
        if session.row_id is None:
            if not session:
                if request.cookies.get(name) is not None:
                    response.delete_cookie(name, domain=self.get_cookie_domain(app),
                                           path=self.get_cookie_path(app))
                return
            token = store.start(session_db, self.serializer.dumps(dict(session)), signed_in,
                                prune_before=utcnow() - app.permanent_session_lifetime
                                if signed_in is not None else None)
            self._set_cookie(app, session, response, token)
            return
        store.save(session_db, session.row_id,
                   self.serializer.dumps(dict(session)) if session.modified else None, session.touch)
        if session.touch and session.permanent:
            # Keep the cookie's own expiry ahead of the server's idle timeout.
            self._set_cookie(app, session, response, request.cookies.get(name))

    def _set_cookie(self, app, session, response, token):
        response.set_cookie(
            self.get_cookie_name(app), token, expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app), domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app))
        response.vary.add("Cookie")


def _user_id(session):
    try:
        return int(session["_user_id"]) if session.get("_user_id") is not None else None
    except (TypeError, ValueError):
        return None


def _writer():
    """The request's database session, with any read-only transaction of the request ended (its
    reads are done; the response is built) so the session's write begins cleanly."""
    session = get_session()
    if session.in_transaction() and not session.info.get("ecrf_writing"):
        session.rollback()
    return session


def _answer_unavailable(response, exc):
    """Turn ``response`` into the 503 answer when the session could not be stored: whatever the view
    did, this browser's session (its sign-in, its CSRF token) was not kept, so it must try again."""
    from ecrf.web.errors import render_unavailable

    page = render_unavailable(exc)
    response.status_code = page.status_code
    response.set_data(page.get_data())
    response.headers.pop("Location", None)
    for name in ("Content-Type", "Retry-After", "Cache-Control"):
        response.headers[name] = page.headers[name]


def _raise_fault():
    fault = getattr(session, "fault", None)
    if fault is not None:
        raise fault


def init_app(app):
    app.session_interface = DatabaseSessionInterface()
    # First of all before_request functions (the CSRF check reads the session too).
    app.before_request_funcs.setdefault(None, []).insert(0, _raise_fault)
