"""API concurrency: per-site subject id counter and idempotency keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:30:00

Generated subject ids come from a counter on the site row (taken with UPDATE ... RETURNING), so
parallel enrolments at one site never draw the same number; it starts at the number of subjects
each site has. ``idempotency_key`` keeps the answer to each API request that created something
under its client's Idempotency-Key, written in the same transaction as what it created.
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("site") as batch_op:
        batch_op.add_column(sa.Column("subject_counter", sa.Integer(), server_default="0", nullable=False))
    op.execute("UPDATE site SET subject_counter = "
               "(SELECT count(*) FROM subject WHERE subject.site_id = site.id)")
    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_idempotency_key_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_key")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_idempotency_key_user_id_key")),
    )


def downgrade():
    op.drop_table("idempotency_key")
    with op.batch_alter_table("site") as batch_op:
        batch_op.drop_column("subject_counter")
