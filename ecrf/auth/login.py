"""Signing in: password check, lockout after repeated failures, and the audit of each attempt.

The answer never reveals whether a username exists: an unknown user costs the same hash
verification and gets the same message as a wrong password.
"""
import dataclasses
import datetime as dt

from sqlalchemy import select

from audit import Action, append
from ecrf.actor import Actor
from ecrf.auth import passwords
from ecrf.auth.passwords import verify_password
from ecrf.auth.throttle import AddressPolicy, check, record_failure
from ecrf.db import utcnow, write_transaction
from ecrf.models import User

REFUSED = "Unknown username or wrong password, or the account is locked. Try again later or ask an administrator."


@dataclasses.dataclass(frozen=True)
class LoginPolicy:
    attempts: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    #: Failed sign-ins per client address (``ecrf.auth.throttle``).
    address: AddressPolicy = AddressPolicy()

    @classmethod
    def from_settings(cls, settings):
        """The policy the ECRF_LOCKOUT_* and ECRF_LOGIN_ADDRESS_* settings describe."""
        return cls(int(settings.get("LOCKOUT_ATTEMPTS", 5)),
                   dt.timedelta(minutes=int(settings.get("LOCKOUT_MINUTES", 15))),
                   AddressPolicy(int(settings.get("LOGIN_ADDRESS_ATTEMPTS", 30)),
                                 dt.timedelta(minutes=int(settings.get("LOGIN_ADDRESS_MINUTES", 15)))))


class LoginRefused(Exception):
    def __init__(self):
        super().__init__(REFUSED)


def authenticate(session, username, password, context, policy=LoginPolicy()):
    """Return the user when the credentials are right and the account usable, else None; raise
    Throttled (nothing checked, nothing written) while the client address is refused.

    Writes login, login_failed and lockout events in their own transaction, committed even when
    the login is refused (returning None rather than raising inside the transaction keeps them).
    """
    username = (username or "").strip()[:64]
    address = context.ip if context is not None else None
    with write_transaction(session):
        now = utcnow()
        check(session, address, policy.address, now)
        user = session.scalar(select(User).where(User.username == username)) if username else None
        ok = verify_password(user.password_hash if user else passwords.DUMMY_HASH, password or "")
        actor = Actor(user.id if user else None, username or "(empty)", None, context)
        refused, locked = _refusal(user, ok, policy, now)
        if refused is None:
            user.failed_logins, user.locked_until = 0, None
            append(session.connection(), actor.event(Action.LOGIN))
            return user
        append(session.connection(), actor.event(Action.LOGIN_FAILED, reason=refused))
        if locked:
            append(session.connection(), actor.event(
                Action.LOCKOUT, reason=f"locked until {user.locked_until.isoformat()}"))
        blocked = record_failure(session, address, policy.address, now)
        if blocked is not None:
            append(session.connection(), actor.event(
                Action.LOCKOUT, reason=f"address {address} refused until {blocked.isoformat()}"))
    return None


def _refusal(user, ok, policy, now):
    """(why a sign-in is refused, whether this refusal locked the account); the reason is None when
    it may go ahead. A wrong password counts toward the account's lockout."""
    if user is None or not user.active:
        return "unknown or inactive user", False
    if user.locked_until is not None and user.locked_until > now:
        return "account locked", False
    if ok:
        return None, False
    user.failed_logins += 1
    reason = f"wrong password ({user.failed_logins} of {policy.attempts})"
    if user.failed_logins >= policy.attempts:
        user.locked_until = now + policy.lockout
        user.failed_logins = 0
        return reason, True
    return reason, False


def login_or_raise(session, username, password, context, policy=LoginPolicy()):
    user = authenticate(session, username, password, context, policy)
    if user is None:
        raise LoginRefused()
    return user


def record_logout(session, user, context):
    with write_transaction(session):
        append(session.connection(), Actor.for_user(user, context).event(Action.LOGOUT))


def confirm_password(session, user, password, context, policy=LoginPolicy(), purpose="signature"):
    """Check a signed-in user's password again (an e-signature's re-entry): True when right and the
    account usable. A wrong password is audited as a failed login and counts toward the lockout,
    like a failed sign-in, so re-entry cannot be used to guess; a right one writes nothing."""
    with write_transaction(session):
        session.refresh(user)
        now = utcnow()
        ok = verify_password(user.password_hash, password or "")
        actor = Actor.for_user(user, context)
        if not user.active or (user.locked_until is not None and user.locked_until > now):
            append(session.connection(), actor.event(Action.LOGIN_FAILED, reason=f"{purpose}: account locked"))
            return False
        if ok:
            user.failed_logins = 0
            return True
        user.failed_logins += 1
        append(session.connection(), actor.event(
            Action.LOGIN_FAILED, reason=f"{purpose}: wrong password ({user.failed_logins} of {policy.attempts})"))
        if user.failed_logins >= policy.attempts:
            user.locked_until = now + policy.lockout
            user.failed_logins = 0
            append(session.connection(), actor.event(
                Action.LOCKOUT, reason=f"locked until {user.locked_until.isoformat()}"))
    return False
