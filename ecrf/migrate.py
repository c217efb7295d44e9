"""Creating and upgrading the database schema with the Alembic migrations shipped in ecrf/migrations.

``ecrf init-db`` calls ``upgrade``; tests build every database the same way, so the schema under test
is the schema that ships. ``pending_changes`` compares the models with the migrated database (it must
be empty: a model change without a migration fails the tests).
"""
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from ecrf.paths import MIGRATIONS_DIR


def target_metadata():
    """The models' metadata plus the audit table's (audit/ keeps its own MetaData)."""
    import audit
    from ecrf import models  # noqa: F401  (registers every table)
    from ecrf.db import Base

    merged = MetaData(naming_convention=Base.metadata.naming_convention)
    for source in (Base.metadata, audit.metadata):
        for table in source.tables.values():
            table.to_metadata(merged)
    return merged


def alembic_config(connection=None):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template",
                           "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def upgrade(engine, revision="heads"):
    """Bring the database at ``engine`` to ``revision`` (creating it from nothing if empty).

    "heads": while independent branches of work each add a migration from the same parent, all of
    them apply; a merge revision later joins them into one head again."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine, revision):
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine):
    """The database's revision (several, comma-separated, while branches are unmerged), or None."""
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None


def pending_changes(engine):
    """Differences between the models and the migrated database: empty when they agree."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, target_metadata())
