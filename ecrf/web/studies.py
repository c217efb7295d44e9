"""Study screens: the studies a user may see, a study's overview, and its subject matrix."""
from flask import Blueprint, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, select

from ecrf.auth import permissions
from ecrf.capture.matrix import subject_matrix
from ecrf.db import get_session
from ecrf.models import RoleGrant, Study, Subject, SubjectState
from ecrf.randomization import can_see_arm
from ecrf.studies import definition, get_study, list_sites
from ecrf.web.input_guard import int_arg

bp = Blueprint("studies", __name__)


@bp.route("/")
@login_required
def index():
    session = get_session()
    studies = session.scalars(
        select(Study).join(RoleGrant, RoleGrant.study_id == Study.id)
        .where(RoleGrant.user_id == current_user.id, RoleGrant.revoked_at.is_(None))
        .distinct().order_by(Study.key)).all()
    return render_template("studies/index.html", studies=studies)


@bp.route("/studies/<study_key>")
@login_required
def home(study_key):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, current_user.user, "study.view", study)
    spec = definition(study)
    counts = dict(session.execute(select(Subject.state, func.count()).where(
        Subject.study_id == study.id).group_by(Subject.state)).all())
    user = current_user.user
    can = {action: permissions.can(session, user, action, study)
           for action in ("subject.view", "query.view", "audit.view", "sae.view", "study.lock",
                          "export", "data.import", "randomization.pharmacy", "randomization.balance")}
    if not can_see_arm(session, user, study):  # both randomization pages show arms
        can["randomization.pharmacy"] = can["randomization.balance"] = False
    return render_template("studies/home.html", study=study, spec=spec, counts=counts,
                           sites=list_sites(session, study), can=can)


@bp.route("/studies/<study_key>/subjects")
@login_required
def subjects(study_key):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, current_user.user, "subject.view", study)
    spec = definition(study)
    site_ids = permissions.visible_site_ids(session, current_user.user, "subject.view", study)
    sites = [s for s in list_sites(session, study) if site_ids is None or s.id in site_ids]
    site = next((s for s in sites if s.key == request.args.get("site")), None)
    state = request.args.get("state") if request.args.get("state") in set(SubjectState) else None
    overdue = request.args.get("overdue") == "1"
    page = int_arg("page", 1) or 1
    matrix = subject_matrix(session, study, spec, site_ids, page=page, site=site, state=state,
                            overdue=overdue)
    filters = {"site": site.key if site else None, "state": state, "overdue": "1" if overdue else None}
    can_enrol = permissions.can(session, current_user.user, "subject.enrol", study)
    return render_template("studies/subjects.html", study=study, spec=spec, matrix=matrix,
                           sites=sites, states=list(SubjectState), filters=filters, can_enrol=can_enrol)
