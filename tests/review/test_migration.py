"""Migration 0003 is a branch from 0001 whose tables reference only tables of 0001."""
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ecrf import migrate

REVIEW_TABLES = {"data_query", "query_message", "verification", "signature", "data_lock", "form_stash"}
INITIAL_TABLES = {"app_user", "study", "site", "subject", "form_record", "form_version"}


def test_the_review_branch_and_its_tables(engine):
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revision = script.get_revision("0003")
    assert revision.down_revision == "0001"
    inspector = inspect(engine)
    assert REVIEW_TABLES <= set(inspector.get_table_names())
    referenced = {fk["referred_table"] for table in REVIEW_TABLES for fk in inspector.get_foreign_keys(table)}
    assert referenced <= INITIAL_TABLES | REVIEW_TABLES
