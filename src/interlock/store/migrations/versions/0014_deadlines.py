"""deadlines: the due instants of runs and nodes with `sla:`, LATE and at_risk flags
(interlock.deadlines)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 02:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deadlines',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('node_id', sa.String(length=128), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('at_risk_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cause_node', sa.String(length=128), nullable=True),
    sa.Column('estimate_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('late_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'node_id')
    )
    op.create_index('ix_deadlines_state_due', 'deadlines', ['state', 'due_at'])


def downgrade() -> None:
    op.drop_index('ix_deadlines_state_due', table_name='deadlines')
    op.drop_table('deadlines')
