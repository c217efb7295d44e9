"""append-only triggers for every declared table, signatures included, generated from one list

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:00:00

The triggers of the audit log (0001, 0005) and of SAE reports and receipts (0002) are replaced by
the ones ``audit.ddl`` generates from ``ecrf.models.append_only``: on SQLite an INSERT OR REPLACE
(or UPSERT) over a stored report or receipt is now refused as it was for the log, and on both
databases signatures can no longer be changed or deleted.
"""
from alembic import op

from audit import ddl
from ecrf.models.append_only import declared

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The tables this migration protects (a table listed later gets its triggers from its own migration).
TABLES = ("audit_event", "sae_report", "sae_receipt", "signature")


def _run(statements):
    for statement in statements:
        op.execute(statement)


def upgrade():
    dialect = op.get_bind().dialect.name
    _run(ddl.drop_initial_statements(dialect))
    _run(ddl.drop_replace_guard_statements(dialect))
    _run(ddl.drop_sae_statements(dialect))
    _run(ddl.create_statements(dialect, declared(*TABLES)))


def downgrade():
    dialect = op.get_bind().dialect.name
    _run(ddl.drop_statements(dialect, declared(*TABLES)))
    _run(ddl.initial_statements(dialect))
    _run(ddl.replace_guard_statements(dialect))
    _run(ddl.sae_statements(dialect))
