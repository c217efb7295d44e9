"""The one permission table: which role may do what. Every page, API route and CLI action asks
``can`` (or ``require``); nothing else decides access.

Site scope is part of the question: a grant limited to some sites allows site-level actions only
there. Study-level actions (``study.view`` and the like) need any active grant in the study.
"""
from sqlalchemy import select

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
    "audit.view": {"investigator", "site_staff", "monitor", "data_manager", "admin"},
    "export": {"data_manager"},
    "sae.view": {"investigator", "site_staff", "monitor", "data_manager", "sponsor"},
    "sae.issue": {"investigator", "site_staff"},
    "sae.receive": {"sponsor"},
    "counts.view": {"admin", "investigator", "site_staff", "monitor", "data_manager", "sponsor", "pharmacist"},
    "arm.view": {"pharmacist"},
}

#: Actions whose answer depends on the site of the object acted on.
SITE_ACTIONS = frozenset({
    "subject.view", "subject.enrol", "subject.state", "form.view", "form.edit", "form.sign",
    "query.raise", "query.answer", "query.close", "form.verify", "sae.view", "sae.issue",
    "audit.view",
})


def active_grants(session, user, study):
    if user is None or not getattr(user, "active", False):
        return []
    return list(session.scalars(select(RoleGrant).where(
        RoleGrant.user_id == user.id, RoleGrant.study_id == study.id, RoleGrant.revoked_at.is_(None))))


def _covers(grant, site):
    return grant.site_id is None or (site is not None and grant.site_id == site.id)


def granting_role(session, user, action, study, site=None):
    """The role that allows ``user`` to do ``action`` (at ``site``), or None."""
    allowed = PERMISSIONS[action]
    for grant in active_grants(session, user, study):
        if grant.role in allowed and (action not in SITE_ACTIONS or site is None or _covers(grant, site)):
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
        raise NotFound("not found")
    raise PermissionDenied(f"your role may not do this ({action})")
