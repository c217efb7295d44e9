"""Alembic environment: runs on the connection ecrf.migrate hands over (never reads alembic.ini URLs)."""
from alembic import context

from ecrf.migrate import target_metadata

config = context.config


def run_migrations_online():
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=target_metadata(),
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("ecrf migrations run online only (ecrf init-db)")
run_migrations_online()
