"""Search the CTCAE v5.0 term list, for coding AE terms: a page for signed-in users (linked from
AE forms) and a JSON API for clients. No study data is read, but the caller must hold a role that
views forms in some study.
"""
from flask import Blueprint, g, jsonify, render_template, request
from flask_login import current_user, login_required

from ecrf.auth import permissions
from ecrf.coding import ctcae
from ecrf.db import get_session
from ecrf.web.bearer import bearer_required

bp = Blueprint("coding", __name__, url_prefix="/api/v1")
pages = Blueprint("coding_pages", __name__)


def _search():
    query = request.args.get("q", "").strip()[:200]
    return query, (ctcae.search(query) if query else [])


@pages.get("/coding/ctcae")
@login_required
def ctcae_page():
    permissions.require_somewhere(get_session(), current_user.user, "form.view")
    query, found = _search()
    return render_template("coding/ctcae.html", query=query, terms=found, version=ctcae.VERSION)


@bp.get("/coding/ctcae")
@bearer_required
def search_ctcae():
    permissions.require_somewhere(get_session(), g.api_user, "form.view")
    _query, found = _search()
    return jsonify({"terms": [{"llt_code": t.llt_code, "term": t.term, "soc": t.soc,
                               "grades": {str(grade): text for grade, text in t.grades}}
                              for t in found]})


def init_app(app):
    from ecrf.web import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.register_blueprint(pages)
