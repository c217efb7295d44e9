"""Account services: users, role grants and API tokens. Every change is audited; nothing is deleted."""
import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from audit import Action, append
from ecrf.auth.passwords import PasswordRejected, check_policy, hash_password
from ecrf.auth.sessions import end_user_sessions
from ecrf.db import utcnow, write_transaction
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import ROLES, ApiToken, RoleGrant, Site, User
from ecrf.studies import get_site, get_study

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
TOKEN_PREFIX = "ecrf_"


def get_user(session, username):
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


#: What account events change (the last part of their field pointer).
ACCOUNT_ATTRIBUTES = ("username", "name", "password", "must_change_password", "active", "roles", "tokens")


def user_pointer(username, attribute):
    """Where an account event happened: ``/users/<username>/<attribute>`` (a JSON pointer), so that
    every event about an account names the account, whatever its reason says."""
    return f"/users/{username.replace('~', '~0').replace('/', '~1')}/{attribute}"


def _audit(session, actor, username, attribute, old, new, action=Action.USER, **where):
    append(session.connection(), actor.event(action, field=user_pointer(username, attribute), old=old,
                                             new=new, reason=f"user {username}", **where))


def create_user(session, actor, username, password, name=None, must_change_password=True, *,
                demo_account=False):
    """Create an active user; the password must meet the policy. ``demo_account`` is for
    ``ecrf demo`` alone: it lets the demo's published password through (nothing else)."""
    if not isinstance(username, str) or not USERNAME.match(username):
        raise Invalid("a username is 2-64 letters, digits, '.', '_', '@' or '-'")
    try:
        check_policy(password, username, demo_account=demo_account)
    except PasswordRejected as exc:
        raise Invalid(str(exc)) from None
    with write_transaction(session):
        if session.scalar(select(User).where(User.username == username)):
            raise Conflict(f"user {username!r} already exists")
        user = User(username=username, name=(name or username).strip(), password_hash=hash_password(password),
                    must_change_password=must_change_password)
        session.add(user)
        session.flush()
        _audit(session, actor, username, "username", None, username)
        _audit(session, actor, username, "name", None, user.name)
    return user


def update_user(session, actor, username, name=None, password=None, must_change_password=None,
                keep_session=None):
    """Change a user's name or password. A new password ends the user's sessions (on every server at
    once), but ``keep_session`` (the id of the session row the user changed it from)."""
    with write_transaction(session):
        user = get_user(session, username)
        if name is not None and name.strip() != user.name:
            _audit(session, actor, username, "name", user.name, name.strip())
            user.name = name.strip()
        if password is not None:
            try:
                check_policy(password, username)
            except PasswordRejected as exc:
                raise Invalid(str(exc)) from None
            user.password_hash = hash_password(password)
            end_user_sessions(session, user.id, "password changed", keep=keep_session)
            user.failed_logins, user.locked_until = 0, None
            _audit(session, actor, username, "password", None, "changed")
        if must_change_password is not None and must_change_password != user.must_change_password:
            _audit(session, actor, username, "must_change_password", user.must_change_password,
                   must_change_password)
            user.must_change_password = must_change_password
    return user


def deactivate_user(session, actor, username, reason=None):
    """Deactivate (never delete): the user's sessions end and their tokens stop working at once."""
    with write_transaction(session):
        user = get_user(session, username)
        if not user.active:
            raise Conflict(f"user {username!r} is already inactive")
        user.active = False
        end_user_sessions(session, user.id, "deactivated")
        append(session.connection(), actor.event(Action.USER, field=user_pointer(username, "active"),
                                                 old=True, new=False,
                                                 reason=reason or f"user {username} deactivated"))
    return user


def list_users(session):
    return list(session.scalars(select(User).order_by(User.username)))


def _grant_where(study, role, site):
    return (RoleGrant.study_id == study.id, RoleGrant.role == role,
            RoleGrant.site_id.is_(None) if site is None else RoleGrant.site_id == site.id,
            RoleGrant.revoked_at.is_(None))


def grant_role(session, actor, username, study_key, role, site_keys=()):
    """Grant ``role`` in a study, at the given sites or (none given) at all its sites."""
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    with write_transaction(session):
        user = get_user(session, username)
        study = get_study(session, study_key)
        sites = [get_site(session, study, key) for key in site_keys] or [None]
        granted = []
        for site in sites:
            if session.scalar(select(RoleGrant).where(RoleGrant.user_id == user.id,
                                                      *_grant_where(study, role, site))):
                continue
            session.add(RoleGrant(user_id=user.id, study_id=study.id, role=role,
                                  site_id=site.id if site else None))
            _audit(session, actor, username, "roles", None, role, action=Action.ROLE,
                   study=study.key, site=site.key if site else None)
            granted.append(site.key if site else "*")
        session.flush()
    return granted


def revoke_role(session, actor, username, study_key, role, site_keys=()):
    """Revoke a grant (it stays on record with the time it was revoked)."""
    with write_transaction(session):
        user = get_user(session, username)
        study = get_study(session, study_key)
        sites = [get_site(session, study, key) for key in site_keys] or [None]
        revoked = []
        for site in sites:
            grant = session.scalar(select(RoleGrant).where(RoleGrant.user_id == user.id,
                                                           *_grant_where(study, role, site)))
            if grant is None:
                continue
            grant.revoked_at = utcnow()
            _audit(session, actor, username, "roles", role, None, action=Action.ROLE,
                   study=study.key, site=site.key if site else None)
            revoked.append(site.key if site else "*")
        if not revoked:
            where = f" at site {', '.join(site_keys)}" if site_keys else ""
            raise NotFound(f"{username!r} holds no {role!r} grant in {study_key!r}{where}")
    return revoked


def user_grants(session, user):
    """(study key, role, site key or None) of the user's active grants."""
    from ecrf.models import Study

    rows = session.execute(
        select(Study.key, RoleGrant.role, Site.key)
        .join(Study, Study.id == RoleGrant.study_id)
        .outerjoin(Site, Site.id == RoleGrant.site_id)
        .where(RoleGrant.user_id == user.id, RoleGrant.revoked_at.is_(None))
        .order_by(Study.key, RoleGrant.role, Site.key))
    return [tuple(r) for r in rows]


def _token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session, actor, username):
    """Create an API token for ``username``; return it (shown once, stored only as a hash)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(session):
        user = get_user(session, username)
        if not user.active:
            raise Conflict(f"user {username!r} is inactive")
        session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), prefix=token[:12]))
        session.flush()
        _audit(session, actor, username, "tokens", None, token[:12], action=Action.TOKEN)
    return token


def revoke_token(session, actor, username, prefix=None):
    """Revoke the user's tokens (those starting with ``prefix``, or all); return how many."""
    with write_transaction(session):
        user = get_user(session, username)
        tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                        ApiToken.revoked_at.is_(None))).all()
        tokens = [t for t in tokens if prefix is None or t.prefix.startswith(prefix[:12])]
        if not tokens:
            raise NotFound(f"{username!r} has no active token" + (f" starting {prefix!r}" if prefix else ""))
        for token in tokens:
            token.revoked_at = utcnow()
            _audit(session, actor, username, "tokens", token.prefix, None, action=Action.TOKEN)
    return len(tokens)


def user_for_token(session, token):
    """The active user an API token belongs to, or None (revoked, unknown, or user inactive)."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    # The user and their role grants come in the same query: every API call asks the permission table.
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token),
                                                ApiToken.revoked_at.is_(None))
                         .options(joinedload(ApiToken.user).joinedload(User.grants)))
    if row is None or not row.user.active:
        return None
    return row.user


def users_for_admin(session, study_ids):
    """The users an administrator of ``study_ids`` may see: those who hold or held a role in one of
    those studies, and those with no role anywhere yet (just created). Others stay hidden, so that
    one study's administrators do not learn who works on other studies."""
    in_studies = select(RoleGrant.user_id).where(RoleGrant.study_id.in_(list(study_ids) or [-1]))
    any_grant = select(RoleGrant.user_id)
    return list(session.scalars(select(User).where(
        User.id.in_(in_studies) | User.id.not_in(any_grant)).order_by(User.username)))


def active_study_ids(session, user):
    """Ids of the studies where ``user`` holds an active grant."""
    return set(session.scalars(select(RoleGrant.study_id).where(
        RoleGrant.user_id == user.id, RoleGrant.revoked_at.is_(None))))


def visible_to_admin(session, user, study_ids):
    """Whether ``users_for_admin(study_ids)`` includes ``user``."""
    studies = set(session.scalars(select(RoleGrant.study_id).where(RoleGrant.user_id == user.id)))
    return not studies or bool(studies & set(study_ids))


def studies_by_id(session, study_ids):
    """The studies with these ids, by key."""
    from ecrf.models import Study

    return list(session.scalars(select(Study).where(Study.id.in_(list(study_ids))).order_by(Study.key)))
