"""systems, external runs, trigger firings, audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 04:05:43.640251
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # The chain's head exists from the start: appends lock it, never race to create it.
    op.bulk_insert(sa.table('audit_head', sa.column('id', sa.Integer()),
                            sa.column('seq', sa.Integer()), sa.column('hash', sa.String())),
                   [{'id': 1, 'seq': 0, 'hash': '0' * 64}])
    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('origin', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_target'), ['target'], unique=False)

    op.create_table('external_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('system', sa.String(length=200), nullable=False),
    sa.Column('job_id', sa.String(length=250), nullable=False),
    sa.Column('external_id', sa.String(length=250), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('remote_status', sa.String(length=64), nullable=False),
    sa.Column('run_type', sa.String(length=64), nullable=True),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('system', 'job_id', 'external_id')
    )
    with op.batch_alter_table('external_runs', schema=None) as batch_op:
        batch_op.create_index('ix_external_runs_seen', ['system', 'updated_at'], unique=False)

    op.create_table('trigger_firings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('namespace', sa.String(length=200), nullable=False),
    sa.Column('flow_id', sa.String(length=128), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=True),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=250), nullable=True))
        batch_op.create_index(batch_op.f('ix_attempts_external_id'), ['external_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempts_external_id'))
        batch_op.drop_column('external_id')

    op.drop_table('trigger_firings')
    with op.batch_alter_table('external_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_external_runs_seen')

    op.drop_table('external_runs')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_target'))
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')
    op.drop_table('audit_head')
