"""Studies and their sites: lookups by key, the current definition, and adding a site."""
import re

from sqlalchemy import select

from audit import Action, append
from ecrf.db import write_transaction
from ecrf.definitions.loader import study_from_stored
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import Site, Study, StudyVersion

SITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


def get_study(session, key):
    study = session.scalar(select(Study).where(Study.key == key)) if isinstance(key, str) else None
    if study is None:
        raise NotFound(f"no study {key!r}")
    return study


def get_site(session, study, key):
    site = session.scalar(select(Site).where(Site.study_id == study.id, Site.key == key))
    if site is None:
        raise NotFound(f"no site {key!r} in study {study.key!r}")
    return site


def list_sites(session, study):
    return list(session.scalars(select(Site).where(Site.study_id == study.id).order_by(Site.key)))


#: Frozen definitions by content hash: a version's content never changes, so neither does this.
_DEFINITIONS = {}


def definition(study):
    """The frozen definition (loader Study) of ``study``'s current version, cached by content hash."""
    version = study.current
    if version is None:
        raise NotFound(f"study {study.key!r} has no loaded version")
    return definition_of(version)


def definition_of(version: StudyVersion):
    cached = _DEFINITIONS.get(version.content_hash)
    if cached is None:
        cached = _DEFINITIONS[version.content_hash] = study_from_stored(version.definition)
    return cached


def site_created_event(session, actor, study_key, site_key):
    site = session.scalar(select(Site).join(Study).where(Study.key == study_key, Site.key == site_key))
    return actor.event(Action.SITE, study=study_key, site=site_key, field="/name", new=site.name)


def add_site(session, actor, study_key, site_key, name, timezone="UTC"):
    """Add a site to a study (audited); refuse an id already used or malformed."""
    if not re.match(SITE_ID_PATTERN, site_key or ""):
        raise Invalid(f"site id {site_key!r} must be 1-32 letters, digits, _ or -, "
                      "starting with a letter or digit")
    if not name or not name.strip():
        raise Invalid("a site needs a name")
    with write_transaction(session):
        study = get_study(session, study_key)
        if session.scalar(select(Site).where(Site.study_id == study.id, Site.key == site_key)):
            raise Conflict(f"site {site_key!r} already exists in study {study_key!r}")
        session.add(Site(study_id=study.id, key=site_key, name=name.strip(), timezone=timezone))
        session.flush()
        append(session.connection(), site_created_event(session, actor, study_key, site_key))
    return site_key
