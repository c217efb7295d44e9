"""study_version.definition as JSON on PostgreSQL: keep the order of a form's fields

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:45:00

JSONB stores an object's keys sorted by length, so on PostgreSQL a form's ``properties`` came back
in another order than its file gives, and its page, exports and printed CRF followed that order.
Plain JSON keeps the text as written. A version stored before this migration keeps the order JSONB
gave it (the original order is gone from the database); SQLite stored text all along.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("study_version", "definition", type_=sa.JSON(),
                        existing_type=postgresql.JSONB(astext_type=sa.Text()),
                        postgresql_using="definition::json")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("study_version", "definition", type_=postgresql.JSONB(astext_type=sa.Text()),
                        existing_type=sa.JSON(), postgresql_using="definition::jsonb")
