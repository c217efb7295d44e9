"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 17:54:11.971993
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from audit import ddl

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_table('audit_event',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('ts', sa.String(length=32), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=200), nullable=True),
    sa.Column('actor_role', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('study', sa.String(length=64), nullable=True),
    sa.Column('site', sa.String(length=32), nullable=True),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('visit', sa.String(length=64), nullable=True),
    sa.Column('form', sa.String(length=64), nullable=True),
    sa.Column('form_version', sa.String(length=64), nullable=True),
    sa.Column('record', sa.Integer(), nullable=True),
    sa.Column('field', sa.Text(), nullable=True),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=400), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_record', ['record', 'seq'], unique=False)
        batch_op.create_index('ix_audit_event_study_subject', ['study', 'subject', 'seq'], unique=False)
        batch_op.create_index('ix_audit_event_ts', ['ts'], unique=False)
    # History cannot be edited: the database itself refuses UPDATE and DELETE on the audit log.
    for statement in ddl.initial_statements(op.get_bind().dialect.name):
        op.execute(statement)

    op.create_table('form_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('form_key', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('schema', sa.JSON().with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_form_version')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_form_version_content_hash'))
    )
    op.create_table('study',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study')),
    sa.UniqueConstraint('key', name=op.f('uq_study_key'))
    )
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_api_token_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    op.create_table('site',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_site_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site')),
    sa.UniqueConstraint('study_id', 'key', name=op.f('uq_site_study_id_key'))
    )
    op.create_table('study_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('loaded_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_study_version_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_version')),
    sa.UniqueConstraint('study_id', 'content_hash', name=op.f('uq_study_version_study_id_content_hash')),
    sa.UniqueConstraint('study_id', 'number', name=op.f('uq_study_version_study_id_number'))
    )
    op.create_table('role_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_role_grant_site_id_site')),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_role_grant_study_id_study')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_role_grant_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grant'))
    )
    op.create_table('study_version_form',
    sa.Column('study_version_id', sa.Integer(), nullable=False),
    sa.Column('form_key', sa.String(length=64), nullable=False),
    sa.Column('form_version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['form_version_id'], ['form_version.id'], name=op.f('fk_study_version_form_form_version_id_form_version')),
    sa.ForeignKeyConstraint(['study_version_id'], ['study_version.id'], name=op.f('fk_study_version_form_study_version_id_study_version')),
    sa.PrimaryKeyConstraint('study_version_id', 'form_key', name=op.f('pk_study_version_form'))
    )
    op.create_table('subject',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('state_reason', sa.String(length=2000), nullable=True),
    sa.Column('day0', sa.Date(), nullable=True),
    sa.Column('arm', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_subject_site_id_site')),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_subject_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject')),
    sa.UniqueConstraint('study_id', 'key', name=op.f('uq_subject_study_id_key'))
    )
    op.create_table('form_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('visit_key', sa.String(length=64), nullable=False),
    sa.Column('form_key', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('form_version_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('missing', sa.JSON().with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['form_version_id'], ['form_version.id'], name=op.f('fk_form_record_form_version_id_form_version')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_form_record_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_form_record')),
    sa.UniqueConstraint('subject_id', 'visit_key', 'form_key', 'seq', name=op.f('uq_form_record_subject_id_visit_key_form_key_seq'))
    )


def downgrade():
    for statement in ddl.drop_initial_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table('form_record')
    op.drop_table('subject')
    op.drop_table('study_version_form')
    op.drop_table('role_grant')
    op.drop_table('study_version')
    op.drop_table('site')
    op.drop_table('api_token')
    op.drop_table('study')
    op.drop_table('form_version')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_ts')
        batch_op.drop_index('ix_audit_event_study_subject')
        batch_op.drop_index('ix_audit_event_record')

    op.drop_table('audit_event')
    op.drop_table('app_user')
