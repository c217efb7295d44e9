"""The one blinding check: may this user (or role) see which arm a subject is on?

A study declares its masking in study.json::

    "blinding": {"masking": "quadruple", "unblinded_roles": ["pharmacist"]}

With ``masking`` other than ``"none"`` the arm is hidden from everyone except the roles listed in
``unblinded_roles``. A study without a ``blinding`` block is open label (ClinicalTrials.gov's default
"None (Open Label)"), and so is ``"masking": "none"``: everyone working in the study may see arms.
"""
from ecrf.auth.permissions import active_grants


def _document(study):
    """study.json of an ORM Study (its current version) or of a loader Study."""
    if hasattr(study, "document"):  # a frozen loader Study
        return study.document
    from ecrf.studies import definition

    return definition(study).document


def masking(study):
    """The study's masking: ``"none"``, ``"single"``, ``"double"``, ``"triple"`` or ``"quadruple"``."""
    blinding = _document(study).get("blinding") or {}
    return blinding.get("masking", "none")


def can_see_arm(session, user_or_role, study, subject=None):
    """True when ``user_or_role`` may see subjects' arms in ``study`` (``subject``'s in particular).

    ``user_or_role`` is a role name (``"sponsor"``) or a User, whose active grants in the study are
    asked; a User needs an ORM Study, a role name accepts a loader Study too. An inactive user, or
    one with no grant in the study, sees no arm even in an open-label study. Given a ``subject``, a
    blinded user who emergency-unblinded that subject (``randomization.service.unblind``) sees its arm.
    """
    blinding = _document(study).get("blinding") or {}
    blind = blinding.get("masking", "none") != "none"
    unblinded = set(blinding.get("unblinded_roles", ()))
    if isinstance(user_or_role, str):
        return not blind or user_or_role in unblinded
    roles = {grant.role for grant in active_grants(session, user_or_role, study)}
    if not roles:
        return False
    if not blind or roles & unblinded:
        return True
    if subject is not None:
        from ecrf.randomization.service import unblinded_for

        return unblinded_for(session, user_or_role, subject) is not None
    return False


def arm_label(study_or_spec, arm_id):
    """The label of an arm id (the id itself when the study does not name it). Call only after
    ``can_see_arm`` said yes."""
    for arm in _document(study_or_spec).get("arms", ()):
        if arm["id"] == arm_id:
            return arm.get("label", arm_id)
    return arm_id
