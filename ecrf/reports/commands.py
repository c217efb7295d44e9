"""What ``ecrf sae report`` and ``ecrf casebook`` do, kept out of cli.py so the CLI stays a list of
commands. The CLI calls the same services, and asks the same permission table, as the pages.

A command run ``--as`` a user acts as that user: the password is confirmed as for an e-signature (a
wrong one is audited and counts toward the lockout) and ``permissions.require`` is asked for the
user's grants, so the report or the export is attributed to a person with a role. Without ``--as``
the operator acts (allowed or not by ``permissions.CLI_COMMANDS``); the operator holds no role in any
study, so a casebook made by the operator shows arms only in an open-label study.
"""
from pathlib import Path

from audit import RequestContext
from ecrf.actor import Actor
from ecrf.auth import permissions
from ecrf.auth.accounts import get_user
from ecrf.auth.login import LoginPolicy, confirm_password
from ecrf.capture.service import get_subject
from ecrf.errors import Invalid
from ecrf.reports import casebook, mail, service
from ecrf.studies import definition, get_site, get_study

CLI = RequestContext(channel="cli")
#: can_see_arm's reader for the operator, who holds no role (so no unblinded one).
OPERATOR_READER = "operator"


def authenticate(session, settings, username, password):
    """The user ``username`` once their password is confirmed; Invalid otherwise."""
    user = get_user(session, username)
    policy = LoginPolicy.from_settings(settings)
    if not confirm_password(session, user, password, CLI, policy, purpose="ecrf command line"):
        raise Invalid(f"the password of {username!r} is not right (or the account is locked)")
    return user


def issue(session, settings, study_key, subject_key, seq, user=None):
    """Issue the next report on AE entry ``seq`` as ``user`` (or the operator); return (report,
    delivery or None)."""
    study = get_study(session, study_key)
    actor = Actor.cli()
    if user is not None:
        subject = get_subject(session, study, subject_key)
        role = permissions.require(session, user, "sae.issue", study, subject.site)
        actor = Actor(user.id, user.username, role, CLI)
    ae_form = (definition(study).safety or {}).get("ae_form")
    return mail.issue_and_deliver(session, actor, settings, study_key, subject_key, ae_form, seq)


def pdf_bytes(session, report):
    return service.report_pdf(session, report)


def casebook_reader(session, study_key, site_key, user=None):
    """(actor, blinding reader) for casebooks of a site: ``user`` must see the site's forms and audit
    trail; without a user, the operator."""
    if user is None:
        return Actor.cli(), OPERATOR_READER
    study = get_study(session, study_key)
    site = get_site(session, study, site_key)
    role = permissions.require(session, user, "form.view", study, site)
    permissions.require(session, user, "audit.view", study, site)
    return Actor(user.id, user.username, role, CLI), user


def site_subjects(session, study_key, site_key):
    return casebook.site_subject_keys(session, study_key, site_key)


def write_casebook(session, actor, reader, study_key, subject_key, folder):
    """Write ``<folder>/<subject>.pdf``; return its page count."""
    book = casebook.export_casebook(session, actor, study_key, subject_key, reader)
    Path(folder, f"{subject_key}.pdf").write_bytes(book.data)
    session.expire_all()  # a site of casebooks must not grow the session's identity map
    return book.pages
