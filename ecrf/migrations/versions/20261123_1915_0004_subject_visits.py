"""subject visits: visit dates and unscheduled visits

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-23 19:15:00

Day 0 is now derived from the anchor visit's date, so subject.day0 goes.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "subject_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("visit_key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("visit_date", sa.Date(), nullable=True),
        sa.Column("unscheduled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"], name=op.f("fk_subject_visit_subject_id_subject")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_visit")),
        sa.UniqueConstraint("subject_id", "visit_key", name=op.f("uq_subject_visit_subject_id_visit_key")),
    )
    with op.batch_alter_table("subject") as batch_op:
        batch_op.drop_column("day0")


def downgrade():
    with op.batch_alter_table("subject") as batch_op:
        batch_op.add_column(sa.Column("day0", sa.Date(), nullable=True))
    op.drop_table("subject_visit")
