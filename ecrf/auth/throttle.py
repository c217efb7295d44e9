"""Throttling sign-ins per client address: failed attempts from one address are counted in the
database (``ecrf.models.LoginThrottle``, so every worker and app server shares the count) in a fixed
window; once ``attempts`` fail within it, that address is refused (HTTP 429 with ``Retry-After``)
until the window ends, before any password is checked.

It complements the per-account lockout (``ecrf.auth.login``): one address spraying guesses over many
usernames is stopped after ``attempts`` failures per window, so it can lock at most
``attempts / lockout attempts`` accounts per window instead of every account it can name. A
successful sign-in does not clear the count (the failures of others from the same address stay
counted), and the refusal reads the same whether the usernames exist or not.
"""
import dataclasses
import datetime as dt
import math

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ecrf.models import LoginThrottle


@dataclasses.dataclass(frozen=True)
class AddressPolicy:
    #: Failed sign-ins from one address within ``window`` before it is refused; 0 turns it off.
    attempts: int = 30
    window: dt.timedelta = dt.timedelta(minutes=15)


class Throttled(Exception):
    """Too many failed sign-ins from this client address; ``retry_after`` is in whole seconds."""

    def __init__(self, retry_after):
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"Too many failed sign-ins from your network address; try again in "
                         f"{_minutes(self.retry_after)}.")


def _minutes(seconds):
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def check(session, address, policy, now):
    """Raise Throttled when ``address`` is refused at ``now``; a read, inside the caller's
    transaction."""
    if not address or policy.attempts <= 0:
        return
    blocked = session.scalar(select(LoginThrottle.blocked_until).where(LoginThrottle.address == address[:64]))
    if blocked is not None and blocked > now:
        raise Throttled(math.ceil((blocked - now).total_seconds()))


def record_failure(session, address, policy, now):
    """Count one failed sign-in from ``address`` (inside the caller's write transaction); returns the
    time the address is refused until when this failure fills the window, else None."""
    if not address or policy.attempts <= 0:
        return None
    address = address[:64]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # The row may be new for two workers at once: insert-or-nothing, then lock and count.
    session.execute(insert(LoginThrottle).values(address=address, window_start=now, failures=0)
                    .on_conflict_do_nothing(index_elements=["address"]))
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.address == address)
                         .with_for_update().execution_options(populate_existing=True))
    if now - row.window_start >= policy.window:
        row.window_start, row.failures, row.blocked_until = now, 0, None
    row.failures += 1
    if row.failures >= policy.attempts and row.blocked_until is None:
        row.blocked_until = row.window_start + policy.window
        return row.blocked_until
    return None
