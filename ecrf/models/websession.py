"""Signed-in state kept on the server: browser sessions and the login throttle's counters.

The browser's cookie carries only a random session id; the row (found by the id's hash) holds what
the session holds, whose it is, and whether it has ended. Signing out, signing out everywhere, a
password change and a deactivation end rows, so a copied cookie stops working on every worker and
app server at once (state lives only in the database).
"""
import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ecrf.db import Base, utcnow


class WebSession(Base):
    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: sha256 of the cookie's session id; the id itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The signed-in user; None for a session that has not signed in (it holds a CSRF token).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    #: The session's values (Flask's tagged JSON): CSRF token, flashed messages, sign-in keys.
    data: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Updated at most every ``TOUCH_EVERY`` (ecrf.auth.sessions): the idle timeout reads it.
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    #: logout, logout everywhere, password changed, deactivated, idle, signed in (the anonymous
    #: session a sign-in replaces), renewed.
    ended_reason: Mapped[str | None] = mapped_column(String(32))


class LoginThrottle(Base):
    """Failed sign-ins counted per client address in a fixed window; a full window refuses further
    attempts from that address (429) until it ends."""

    __tablename__ = "login_throttle"

    #: The client address the failures came from.
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[dt.datetime]
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[dt.datetime | None]
