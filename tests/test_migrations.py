"""The shipped migrations build exactly the models' schema on every backend, and go both ways."""
from sqlalchemy import inspect

from ecrf import migrate
from ecrf.db import make_engine


def test_upgrade_matches_the_models_and_downgrade_removes_everything(new_database):
    engine = make_engine(new_database())
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) is not None
        assert migrate.pending_changes(engine) == []
        tables = set(inspect(engine).get_table_names())
        assert {"audit_event", "study", "study_version", "form_version", "form_record", "subject",
                "site", "app_user", "role_grant", "api_token"} <= tables
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.pending_changes(engine) == []
    finally:
        engine.dispose()


def test_the_session_database_is_at_head(engine):
    assert migrate.pending_changes(engine) == []
