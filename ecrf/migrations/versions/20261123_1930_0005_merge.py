"""merge the parallel branches; refuse INSERT OR REPLACE on the SQLite audit log

Revision ID: 0005
Revises: 0002, 0003, 0004
Create Date: 2026-11-23 19:30:00

SAE reports (0002), review (0003) and subject visits (0004) were written side by side from 0001;
this joins them into one head. SQLite's INSERT OR REPLACE deletes a row without firing DELETE
triggers, so a guard refuses an insert that reuses a stored sequence number.
"""
from alembic import op

from audit import ddl

revision = "0005"
down_revision = ("0002", "0003", "0004")
branch_labels = None
depends_on = None


def upgrade():
    for statement in ddl.replace_guard_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade():
    for statement in ddl.drop_replace_guard_statements(op.get_bind().dialect.name):
        op.execute(statement)
