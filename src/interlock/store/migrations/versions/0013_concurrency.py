"""concurrency limits: the system an attempt runs on, the scope a queued run or node waits
for, and one lock row per limited scope (interlock.limits)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 01:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('concurrency_scopes',
    sa.Column('scope', sa.String(length=300), nullable=False),
    sa.Column('bumps', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope')
    )
    op.add_column('attempts', sa.Column('system', sa.String(length=200), nullable=True))
    op.create_index('ix_attempts_system_state', 'attempts', ['system', 'state'])
    op.add_column('runs', sa.Column('waiting_for', sa.String(length=300), nullable=True))
    op.create_index('ix_runs_waiting', 'runs', ['waiting_for', 'created_at'])
    op.add_column('node_runs', sa.Column('waiting_for', sa.String(length=300), nullable=True))
    op.create_index('ix_node_runs_waiting', 'node_runs', ['waiting_for', 'updated_at'])


def downgrade() -> None:
    op.drop_index('ix_node_runs_waiting', table_name='node_runs')
    op.drop_column('node_runs', 'waiting_for')
    op.drop_index('ix_runs_waiting', table_name='runs')
    op.drop_column('runs', 'waiting_for')
    op.drop_index('ix_attempts_system_state', table_name='attempts')
    op.drop_column('attempts', 'system')
    op.drop_table('concurrency_scopes')
