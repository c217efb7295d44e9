"""HTTP only: one blueprint per screen group. Views load (404), check permission (403), call one
service, and redirect or re-render; no SQL writes and no commits live here."""
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def init_app(app):
    from ecrf.web import (api, auth, coding, errors, input_guard, reports, security, studies, subjects,
                          timefmt)

    input_guard.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    timefmt.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(studies.bp)
    app.register_blueprint(subjects.bp)
    api.init_app(app)
    from ecrf.web import audit as audit_pages
    app.register_blueprint(audit_pages.bp)
    from ecrf.web import admin, review
    app.register_blueprint(review.bp)
    app.register_blueprint(admin.bp)
    from ecrf.web import capture
    app.register_blueprint(capture.bp)
    from ecrf.web import imports
    app.register_blueprint(imports.bp)
    reports.init_app(app)
    from ecrf.web import randomization
    app.register_blueprint(randomization.bp)
    coding.init_app(app)
    from ecrf.web import exports
    exports.init_app(app)
