"""sae reports: issued SAE reports and the sponsor's receipts, append-only

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:00:00

Both tables refuse UPDATE and DELETE by trigger, as the audit log does: an issued report is never
overwritten (a change is reported as a follow-up, a new row) and a receipt is never withdrawn.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from audit import ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "sae_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("report_type", sa.String(length=20), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("awareness_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("issued_role", sa.String(length=32), nullable=True),
        sa.Column("content", JSON, nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["issued_by_id"], ["app_user.id"],
                                name=op.f("fk_sae_report_issued_by_id_app_user")),
        sa.ForeignKeyConstraint(["record_id"], ["form_record.id"],
                                name=op.f("fk_sae_report_record_id_form_record")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_sae_report_site_id_site")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_sae_report_study_id_study")),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"],
                                name=op.f("fk_sae_report_subject_id_subject")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sae_report")),
        sa.UniqueConstraint("record_id", "version", name=op.f("uq_sae_report_record_id_version")),
        sa.UniqueConstraint("study_id", "number", "version",
                            name=op.f("uq_sae_report_study_id_number_version")),
    )
    op.create_table(
        "sae_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by_id", sa.Integer(), nullable=True),
        sa.Column("received_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["received_by_id"], ["app_user.id"],
                                name=op.f("fk_sae_receipt_received_by_id_app_user")),
        sa.ForeignKeyConstraint(["report_id"], ["sae_report.id"],
                                name=op.f("fk_sae_receipt_report_id_sae_report")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sae_receipt")),
        sa.UniqueConstraint("report_id", name=op.f("uq_sae_receipt_report_id")),
    )
    for statement in ddl.sae_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade():
    # Dropping a table drops its triggers; PostgreSQL's trigger function goes separately.
    op.drop_table("sae_receipt")
    op.drop_table("sae_report")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS sae_report_refuse_change()")
