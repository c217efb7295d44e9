"""server-side sessions and the per-address login throttle

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:30:00

Browser sessions move from the signed cookie into ``web_session`` (the cookie keeps only a random
id, stored here hashed), so ending a session holds on every server; ``app_user.session_epoch``,
which they replace, goes. ``login_throttle`` counts failed sign-ins per client address.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _when(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        _when("created_at"),
        _when("last_seen_at"),
        _when("ended_at", nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_web_session_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_session_token_hash")),
    )
    op.create_index(op.f("ix_web_session_user_id"), "web_session", ["user_id"], unique=False)
    op.create_table(
        "login_throttle",
        sa.Column("address", sa.String(length=64), nullable=False),
        _when("window_start"),
        sa.Column("failures", sa.Integer(), nullable=False),
        _when("blocked_until", nullable=True),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_login_throttle")),
    )
    # A plain ALTER TABLE on both (SQLite has it since 3.35): a batch copy of app_user would trip
    # over the foreign keys that point at it.
    op.execute("ALTER TABLE app_user DROP COLUMN session_epoch")


def downgrade():
    op.add_column("app_user", sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    op.drop_table("login_throttle")
    op.drop_index(op.f("ix_web_session_user_id"), table_name="web_session")
    op.drop_table("web_session")
