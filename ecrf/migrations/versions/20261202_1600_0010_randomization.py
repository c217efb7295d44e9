"""randomization: allocation lists, slots, allocations, unblindings

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:00:00

All four tables only grow: a slot is consumed by inserting an allocation, never by updating it.
They are declared append-only (``ecrf.models.append_only``) and get their triggers here.
"""
import sqlalchemy as sa
from alembic import op

from audit import ddl
from ecrf.models.append_only import declared
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql")

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: The tables whose triggers this migration creates (ecrf.models.append_only).
TABLES = ("allocation_list", "allocation_slot", "allocation", "unblinding")


def upgrade():
    op.create_table(
        "allocation_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_allocation_list_study_id_study")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_list")),
        sa.UniqueConstraint("study_id", name=op.f("uq_allocation_list_study_id")),
    )
    op.create_table(
        "allocation_slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(length=500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("randomization_number", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=False),
        sa.Column("kit", sa.String(length=64), nullable=True),
        sa.Column("block", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["list_id"], ["allocation_list.id"],
                                name=op.f("fk_allocation_slot_list_id_allocation_list")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_allocation_slot_study_id_study")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_slot")),
        sa.UniqueConstraint("study_id", "randomization_number",
                            name=op.f("uq_allocation_slot_study_id_randomization_number")),
        sa.UniqueConstraint("list_id", "stratum", "position", name=op.f("uq_allocation_slot_list_id_stratum_position")),
    )
    op.create_table(
        "allocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=True),
        sa.Column("stratum", sa.String(length=500), nullable=False),
        sa.Column("factors", JSON, nullable=False),
        sa.Column("randomization_number", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=False),
        sa.Column("kit", sa.String(length=64), nullable=True),
        sa.Column("randomized_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("randomized_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_allocation_study_id_study")),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"], name=op.f("fk_allocation_subject_id_subject")),
        sa.ForeignKeyConstraint(["slot_id"], ["allocation_slot.id"],
                                name=op.f("fk_allocation_slot_id_allocation_slot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation")),
        sa.UniqueConstraint("study_id", "randomization_number",
                            name=op.f("uq_allocation_study_id_randomization_number")),
        sa.UniqueConstraint("subject_id", name=op.f("uq_allocation_subject_id")),
        sa.UniqueConstraint("slot_id", name=op.f("uq_allocation_slot_id")),
    )
    op.create_table(
        "unblinding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("unblinded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_unblinding_study_id_study")),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"], name=op.f("fk_unblinding_subject_id_subject")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_unblinding_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unblinding")),
    )
    for statement in ddl.create_statements(op.get_bind().dialect.name, declared(*TABLES)):
        op.execute(statement)


def downgrade():
    # Dropping a table drops its triggers; PostgreSQL's function stays for the other tables.
    op.drop_table("unblinding")
    op.drop_table("allocation")
    op.drop_table("allocation_slot")
    op.drop_table("allocation_list")
