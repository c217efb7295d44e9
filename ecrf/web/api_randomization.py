"""JSON API for randomization (token auth, exempt from CSRF like the rest of /api/v1):

    GET  .../subjects/<subject>             the subject, with its randomization (arm only if unblinded)
    POST .../subjects/<subject>/randomize   allocate: 201 {"randomization_number", "randomized_at"[, "arm"]}
    POST .../subjects/<subject>/unblind     emergency unblinding {"reason", "password"}: the arm, to you only
    GET  .../randomization/balance          counts per arm per stratum and overall (unblinded roles)

(``...`` is ``/api/v1/studies/<study>``.) Each route loads (404), asks the permission table, calls
one service; whether an arm shows is decided by ``can_see_arm`` alone.
"""
from flask import Blueprint, current_app, g, jsonify

from ecrf.auth import permissions
from ecrf.auth.login import LoginPolicy
from ecrf.capture.service import get_subject
from ecrf.db import get_session
from ecrf.errors import PermissionDenied
from ecrf.randomization import can_see_arm, service
from ecrf.studies import get_study
from ecrf.web.api import _body
from ecrf.web.bearer import api_actor, bearer_required
from ecrf.web.idempotent import idempotent

bp = Blueprint("api_randomization", __name__, url_prefix="/api/v1")
SUBJECT = "/studies/<study_key>/subjects/<subject_key>"


def _load(study_key, subject_key, action):
    session = get_session()
    study = get_study(session, study_key)
    subject = get_subject(session, study, subject_key)
    role = permissions.require(session, g.api_user, action, study, subject.site)
    return session, study, subject, role


@bp.get(SUBJECT)
@bearer_required
def subject(study_key, subject_key):
    session, study, subject, _ = _load(study_key, subject_key, "subject.view")
    return jsonify({"subject": subject.key, "site": subject.site.key, "state": subject.state,
                    "state_reason": subject.state_reason,
                    "randomization": service.subject_summary(session, g.api_user, study, subject)})


@bp.post(SUBJECT + "/randomize")
@bearer_required
@idempotent
def randomize(study_key, subject_key):
    session, study, subject, role = _load(study_key, subject_key, "subject.randomize")
    row = service.randomize(session, api_actor(role), study_key, subject_key)
    body = {"randomization_number": row.randomization_number, "randomized_at": row.randomized_at.isoformat()}
    if can_see_arm(session, g.api_user, study, subject):
        body["arm"] = row.arm
    return jsonify(body), 201


def policy():
    """The sign-in policy a password re-entry counts against (lockout and address throttle)."""
    return LoginPolicy.from_settings(current_app.config)


@bp.post(SUBJECT + "/unblind")
@bearer_required
def unblind(study_key, subject_key):
    session, study, subject, role = _load(study_key, subject_key, "subject.unblind")
    body = _body()
    row, delivery = service.emergency_unblind(
        session, api_actor(role), g.api_user, study_key, subject_key, body.get("reason"), body.get("password"),
        policy(), current_app.config)
    summary = service.subject_summary(session, g.api_user, study, subject)
    return jsonify({"arm": summary["arm"], "arm_label": summary["arm_label"],
                    "unblinded_at": row.unblinded_at.isoformat(),
                    "notified": delivery.status if delivery else "no contacts or no mail server configured"})


@bp.get("/studies/<study_key>/randomization/balance")
@bearer_required
def balance(study_key):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, g.api_user, "randomization.balance", study)
    if not can_see_arm(session, g.api_user, study):
        raise PermissionDenied("the balance report shows arms: your role is blinded in this study")
    report = service.balance(session, study)
    return jsonify({"arms": list(report.arms), "overall": report.overall, "strata": report.strata,
                    "factors": report.factors})
