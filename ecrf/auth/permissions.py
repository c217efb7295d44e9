"""The one permission table: which role may do what. Every page, API route and CLI action asks
``can`` (or ``require``); nothing else decides access.

Site scope is part of the question: a grant limited to some sites allows site-level actions only
there. Study-level actions (``study.view`` and the like) need any active grant in the study.
"""
from sqlalchemy import inspect, select

from ecrf.errors import NotFound, PermissionDenied
from ecrf.models import RoleGrant

#: action -> roles allowed. Actions on patient-level data are checked against a site.
PERMISSIONS = {
    "study.view": {"admin", "investigator", "site_staff", "monitor", "data_manager", "sponsor", "pharmacist"},
    "study.manage": {"admin"},
    "users.manage": {"admin"},
    "subject.view": {"investigator", "site_staff", "monitor", "data_manager", "pharmacist"},
    "subject.enrol": {"investigator", "site_staff"},
    "subject.state": {"investigator", "site_staff"},
    "form.view": {"investigator", "site_staff", "monitor", "data_manager"},
    "form.edit": {"investigator", "site_staff"},
    "form.sign": {"investigator"},
    "query.raise": {"monitor", "data_manager"},
    "query.answer": {"investigator", "site_staff"},
    "query.close": {"monitor", "data_manager"},
    "form.verify": {"monitor"},
    "form.lock": {"data_manager"},
    "study.lock": {"data_manager"},
    "query.view": {"investigator", "site_staff", "monitor", "data_manager"},
    "audit.view": {"investigator", "site_staff", "monitor", "data_manager", "admin"},
    "export": {"data_manager"},
    "data.import": {"data_manager"},
    "sae.view": {"investigator", "site_staff", "monitor", "data_manager", "sponsor"},
    "sae.issue": {"investigator", "site_staff"},
    "sae.receive": {"sponsor"},
    "counts.view": {"admin", "investigator", "site_staff", "monitor", "data_manager", "sponsor", "pharmacist"},
    "arm.view": {"pharmacist"},
    # Randomization: allocating, emergency unblinding of one subject, the pharmacist's list, balance.
    # Seeing an arm needs can_see_arm (the study's blinding) on top of these.
    "subject.randomize": {"investigator", "site_staff"},
    "subject.unblind": {"investigator"},
    "randomization.pharmacy": {"pharmacist"},
    "randomization.balance": {"pharmacist", "data_manager", "monitor"},
}

#: What ``audit.view`` needs beside it to show the audit events about patients (those naming a subject
#: or a form record) at a site: the permission to view that data in its forms. An administrator holds
#: ``audit.view`` for the study's configuration events and refusals, not for clinical values
#: (ecrf.audit_view.scope_for).
AUDIT_DATA_ACTION = "form.view"

#: Actions whose answer depends on the site of the object acted on.
SITE_ACTIONS = frozenset({
    "subject.view", "subject.enrol", "subject.state", "form.view", "form.edit", "form.sign",
    "query.raise", "query.answer", "query.close", "form.verify", "sae.view", "sae.issue",
    "audit.view", "form.lock", "query.view", "data.import", "subject.randomize", "subject.unblind",
})

#: Actions on a whole study that a grant limited to some sites does not allow (a database lock).
STUDY_WIDE_ACTIONS = frozenset({"study.lock"})


class NotVisible(NotFound):
    """A refusal answered as 404, so that ids of other studies' and sites' objects do not leak."""


def active_grants(session, user, study):
    """The user's active grants in the study, as rows with ``role`` and ``site_id``.

    Within a web request they are read once per user and study (a page asks several questions);
    grants changed by the request itself concern other users (the users page), never the asker.
    """
    if user is None or not getattr(user, "active", False):
        return []
    cache = _request_cache()
    key = (user.id, study.id)
    if cache is not None and key in cache:
        return cache[key]
    state = inspect(user, raiseerr=False)
    if cache is not None and state is not None and "grants" in state.dict:
        # Loaded with the signed-in user at the start of the request (web.auth): no query at all.
        grants = cache[key] = [g for g in user.grants if g.study_id == study.id and g.revoked_at is None]
        return grants
    grants = session.execute(select(RoleGrant.role, RoleGrant.site_id).where(
        RoleGrant.user_id == user.id, RoleGrant.study_id == study.id, RoleGrant.revoked_at.is_(None))).all()
    if cache is not None:
        cache[key] = grants
    return grants


def _request_cache():
    from flask import g, has_request_context

    if not has_request_context():
        return None
    if "ecrf_grants" not in g:
        g.ecrf_grants = {}
    return g.ecrf_grants


def _covers(grant, site):
    return grant.site_id is None or (site is not None and grant.site_id == site.id)


def granting_role(session, user, action, study, site=None):
    """The role that allows ``user`` to do ``action`` (at ``site``), or None."""
    allowed = PERMISSIONS[action]
    for grant in active_grants(session, user, study):
        if grant.role in allowed and (action not in SITE_ACTIONS or site is None or _covers(grant, site)) \
                and (action not in STUDY_WIDE_ACTIONS or grant.site_id is None):
            return grant.role
    return None


def can(session, user, action, study, site=None):
    return granting_role(session, user, action, study, site) is not None


def visible_site_ids(session, user, action, study):
    """Site ids where ``user`` may do ``action``; None means every site of the study."""
    ids = set()
    for grant in active_grants(session, user, study):
        if grant.role in PERMISSIONS[action]:
            if grant.site_id is None:
                return None
            ids.add(grant.site_id)
    return ids


def require(session, user, action, study, site=None):
    """Return the granting role, or raise: NotFound when the user has no business in the study or
    site at all (so ids do not leak), PermissionDenied when they see it but may not do this."""
    role = granting_role(session, user, action, study, site)
    if role is not None:
        return role
    grants = active_grants(session, user, study)
    if not grants or (site is not None and action in SITE_ACTIONS
                      and not any(_covers(g, site) for g in grants)):
        exc = NotVisible("not found")
    else:
        exc = PermissionDenied(f"your role may not do this ({action})")
    # What was refused, for the permission-denied audit event (ecrf.auth.denials).
    exc.action, exc.study, exc.site = action, study.key, site.key if site is not None else None
    raise exc


def studies_where(session, user, action):
    """Ids of the studies where ``user`` holds a role allowing ``action`` (at any of its sites)."""
    if user is None or not getattr(user, "active", False):
        return set()
    roles = PERMISSIONS[action]
    return {g.study_id for g in session.scalars(select(RoleGrant).where(
        RoleGrant.user_id == user.id, RoleGrant.revoked_at.is_(None), RoleGrant.role.in_(roles)))}


def require_somewhere(session, user, action):
    """For pages that are not about one study (the users page): the ids of the studies where the
    user may do ``action``; PermissionDenied when there are none."""
    ids = studies_where(session, user, action)
    if not ids:
        exc = PermissionDenied(f"your role may not do this ({action})")
        exc.action, exc.study, exc.site = action, None, None
        raise exc
    return ids


# --- the command line -------------------------------------------------------------------------------

#: The command line acts as the operator: whoever may run ``ecrf`` on the server with its
#: configuration, and so with its database credentials. The operator sets up the system, studies and
#: accounts and looks after the audit log, but holds no role in any study: entering data, queries,
#: verification, signatures and locks need a person signed in with a role, so no command does them.
OPERATOR_ACTIONS = frozenset({"system.manage", "study.manage", "users.manage", "audit.verify",
                              "audit.view", "export"})

#: ``ecrf`` command -> the action it needs from the operator (None: it reads only files it is given
#: and touches no database). A command missing here is refused (``ecrf.cli`` asks before each run).
CLI_COMMANDS = {
    "init-db": "system.manage", "serve": "system.manage", "demo": "system.manage",
    "study validate": None, "study load": "study.manage", "study list": "study.manage",
    "study diff": "study.manage", "site add": "study.manage",
    "user create": "users.manage", "user update": "users.manage", "user deactivate": "users.manage",
    "user list": "users.manage", "role grant": "users.manage", "role revoke": "users.manage",
    "token create": "users.manage", "token revoke": "users.manage",
    "audit verify": "audit.verify", "audit checkpoint": "audit.verify", "audit export": "audit.view",
    # Clinical documents: issued by a named user (--as), or by the operator where allowed below.
    "sae report": "sae.issue", "casebook": "export",
    "export csv": "export", "export odm": "export", "export dataset-json": "export", "export stats": "export",
    # Dictionaries, no study data: searching reads shipped or imported files only.
    "coding search": None, "coding import-meddra": "system.manage",
    # Imports: definitions are converted file to file; data is imported by a named user (--as).
    "import redcap": None, "import odm": None, "import data": "data.import",
    # The allocation list: made and loaded by the operator; its export is unblinded and audited.
    "randomization generate": "study.manage", "randomization import": "study.manage",
    "randomization export": "export",
}

#: Commands that can act as a named user (``--as USER`` with their password): they ask the table
#: themselves, for that user at the object's site, or (without ``--as``) for the operator.
ACTS_AS_USER = frozenset({"sae report", "casebook", "import data"})


def require_operator(command):
    """The action ``ecrf <command>`` needs, or PermissionDenied when the table does not allow it."""
    if command not in CLI_COMMANDS:
        exc = PermissionDenied(f"'ecrf {command}' is not in the permission table "
                               "(ecrf.auth.permissions.CLI_COMMANDS)")
    elif CLI_COMMANDS[command] is not None and CLI_COMMANDS[command] not in OPERATOR_ACTIONS:
        exc = PermissionDenied(f"the command line may not do this ({CLI_COMMANDS[command]})")
    else:
        return CLI_COMMANDS[command]
    exc.action, exc.study, exc.site = CLI_COMMANDS.get(command) or command, None, None
    raise exc
