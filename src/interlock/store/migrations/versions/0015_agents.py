"""agents: the sessions (conversation, lease, outcome) and steps of `uses: agent` nodes
(the agent adapter, docs/agents.md)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 02:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_sessions',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('node_id', sa.String(length=128), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.JSON(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_agent_sessions_node', 'agent_sessions', ['run_id', 'node_id'])
    op.create_table('agent_steps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('node_id', sa.String(length=128), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('idempotency_key', sa.String(length=240), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('finish_reason', sa.String(length=40), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('messages_sha256', sa.String(length=64), nullable=True),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.Column('tool', sa.String(length=128), nullable=True),
    sa.Column('call_id', sa.String(length=128), nullable=True),
    sa.Column('arguments', sa.JSON(), nullable=True),
    sa.Column('policy', sa.JSON(), nullable=True),
    sa.Column('approval_id', sa.String(length=40), nullable=True),
    sa.Column('ref', sa.String(length=2000), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'node_id', 'attempt', 'seq'),
    sa.UniqueConstraint('idempotency_key')
    )


def downgrade() -> None:
    op.drop_table('agent_steps')
    op.drop_index('ix_agent_sessions_node', table_name='agent_sessions')
    op.drop_table('agent_sessions')
