"""schedule cursors, cron checks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('schedule_cursors',
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('namespace', sa.String(length=200), nullable=False),
    sa.Column('flow_id', sa.String(length=128), nullable=False),
    sa.Column('last_tick', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('cron_checks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('system', sa.String(length=200), nullable=False),
    sa.Column('job_id', sa.String(length=250), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=250), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('system', 'job_id', 'due_at')
    )
    with op.batch_alter_table('cron_checks', schema=None) as batch_op:
        batch_op.create_index('ix_cron_checks_status', ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cron_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_cron_checks_status')
    op.drop_table('cron_checks')
    op.drop_table('schedule_cursors')
