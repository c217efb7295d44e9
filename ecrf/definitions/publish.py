"""Store a validated study as an immutable, content-hashed version; a new version only on change.

Form schemas are stored once per content hash (``FormVersion``) however many study versions use
them, so a record saved against a form version keeps pointing at exactly the schema it was saved
with. Sites listed in study.json are created at load. Each new version is an audited action.
"""
import dataclasses

from sqlalchemy import select

from audit import Action, append
from ecrf.db import write_transaction
from ecrf.definitions.model import thaw
from ecrf.models import FormVersion, Site, Study, StudyVersion, StudyVersionForm


@dataclasses.dataclass(frozen=True)
class PublishResult:
    study_key: str
    version: int
    content_hash: str
    created: bool
    sites_added: tuple


def publish_study(session, actor, study):
    """Store ``study`` (a loader Study) unless its current version already has the same content."""
    with write_transaction(session):
        row = session.scalar(select(Study).where(Study.key == study.id))
        if row is None:
            row = Study(key=study.id, title=study.title)
            session.add(row)
            session.flush()
        current = row.current
        sites_added = _add_sites(session, row, study)
        if current is not None and current.content_hash == study.hash:
            if sites_added:
                _audit_sites(session, actor, study.id, sites_added)
            return PublishResult(study.id, current.number, study.hash, False, sites_added)

        definition = study.stored_definition()
        version = StudyVersion(study=row, number=(current.number + 1) if current else 1,
                               content_hash=study.hash, definition=definition, loaded_by=actor.name)
        row.title = study.title
        session.add(version)
        for form_id, form in study.forms.items():
            form_version = session.scalar(select(FormVersion).where(FormVersion.content_hash == form.hash))
            if form_version is None:
                form_version = FormVersion(form_key=form_id, content_hash=form.hash, title=form.title,
                                           schema=thaw(form.schema))
                session.add(form_version)
            session.add(StudyVersionForm(study_version=version, form_key=form_id,
                                         form_version=form_version))
        session.flush()
        append(session.connection(), actor.event(
            Action.STUDY_LOADED, study=study.id, field="/version",
            old=current.number if current else None, new=version.number,
            reason=f"content {study.hash}"))
        if sites_added:
            _audit_sites(session, actor, study.id, sites_added)
        return PublishResult(study.id, version.number, study.hash, True, sites_added)


def _add_sites(session, study_row, study):
    existing = set(session.scalars(select(Site.key).where(Site.study_id == study_row.id)))
    added = []
    for site in study.sites:
        if site.id not in existing:
            session.add(Site(study_id=study_row.id, key=site.id, name=site.name,
                             timezone=site.timezone or study.document.get("timezone") or "UTC"))
            added.append(site.id)
    session.flush()
    return tuple(added)


def _audit_sites(session, actor, study_key, site_keys):
    from ecrf.studies import site_created_event

    for key in site_keys:
        append(session.connection(), site_created_event(session, actor, study_key, key))
