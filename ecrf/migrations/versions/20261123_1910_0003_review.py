"""review: queries, source data verification, signatures, locks, and stashed form values

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-23 19:10:00

A branch parallel to 0002 and 0004 (all from 0001); its tables reference only tables of 0001.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql")


def _when(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "data_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(["record_id"], ["form_record.id"], name=op.f("fk_data_query_record_id_form_record")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_data_query_study_id_study")),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"], name=op.f("fk_data_query_subject_id_subject")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_query")),
    )
    op.create_index("ix_data_query_study_state", "data_query", ["study_id", "state"])
    op.create_index(op.f("ix_data_query_subject_id"), "data_query", ["subject_id"])
    op.create_index(op.f("ix_data_query_record_id"), "data_query", ["record_id"])

    op.create_table(
        "query_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data_changed", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["author_id"], ["app_user.id"], name=op.f("fk_query_message_author_id_app_user")),
        sa.ForeignKeyConstraint(["query_id"], ["data_query.id"], name=op.f("fk_query_message_query_id_data_query")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_message")),
    )
    op.create_index(op.f("ix_query_message_query_id"), "query_message", ["query_id"])

    op.create_table(
        "verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=500), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("verified_by_id", sa.Integer(), nullable=True),
        sa.Column("verified_by_name", sa.String(length=200), nullable=False),
        _when("verified_at"),
        _when("cleared_at", nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["form_record.id"], name=op.f("fk_verification_record_id_form_record")),
        sa.ForeignKeyConstraint(["verified_by_id"], ["app_user.id"], name=op.f("fk_verification_verified_by_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification")),
    )
    op.create_index(op.f("ix_verification_record_id"), "verification", ["record_id"])

    op.create_table(
        "signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("visit_key", sa.String(length=64), nullable=True),
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("meaning", sa.String(length=500), nullable=False),
        _when("signed_at"),
        sa.Column("record_ids", JSON, nullable=False),
        sa.Column("data_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["form_record.id"], name=op.f("fk_signature_record_id_form_record")),
        sa.ForeignKeyConstraint(["signer_id"], ["app_user.id"], name=op.f("fk_signature_signer_id_app_user")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_signature_study_id_study")),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"], name=op.f("fk_signature_subject_id_subject")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature")),
    )
    op.create_index(op.f("ix_signature_subject_id"), "signature", ["subject_id"])

    op.create_table(
        "data_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("locked_by", sa.String(length=200), nullable=False),
        _when("locked_at"),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("unlocked_by", sa.String(length=200), nullable=True),
        _when("unlocked_at", nullable=True),
        sa.Column("unlock_reason", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["form_record.id"], name=op.f("fk_data_lock_record_id_form_record")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_data_lock_study_id_study")),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"], name=op.f("fk_data_lock_subject_id_subject")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_lock")),
    )
    op.create_index(op.f("ix_data_lock_study_id"), "data_lock", ["study_id"])

    op.create_table(
        "form_stash",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=2000), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_form_stash_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_stash")),
    )


def downgrade():
    op.drop_table("form_stash")
    op.drop_index(op.f("ix_data_lock_study_id"), table_name="data_lock")
    op.drop_table("data_lock")
    op.drop_index(op.f("ix_signature_subject_id"), table_name="signature")
    op.drop_table("signature")
    op.drop_index(op.f("ix_verification_record_id"), table_name="verification")
    op.drop_table("verification")
    op.drop_index(op.f("ix_query_message_query_id"), table_name="query_message")
    op.drop_table("query_message")
    op.drop_index(op.f("ix_data_query_record_id"), table_name="data_query")
    op.drop_index(op.f("ix_data_query_subject_id"), table_name="data_query")
    op.drop_index("ix_data_query_study_state", table_name="data_query")
    op.drop_table("data_query")
