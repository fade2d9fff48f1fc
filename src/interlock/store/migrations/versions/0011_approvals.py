"""approvals: requests and votes; flow revisions' author; API tokens' groups

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approval_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('namespace', sa.String(length=200), nullable=False),
    sa.Column('flow', sa.String(length=330), nullable=True),
    sa.Column('run_id', sa.String(length=40), nullable=True),
    sa.Column('node_id', sa.String(length=128), nullable=True),
    sa.Column('system', sa.String(length=200), nullable=True),
    sa.Column('ref', sa.String(length=1000), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('reject_options', sa.JSON(), nullable=False),
    sa.Column('inputs_spec', sa.JSON(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('escalation', sa.JSON(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('excluded', sa.JSON(), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('link', sa.String(length=2000), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalate_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_remind_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('option', sa.String(length=64), nullable=True),
    sa.Column('decision_inputs', sa.JSON(), nullable=False),
    sa.Column('decided_by', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('system', 'ref')
    )
    op.create_index('ix_approvals_state', 'approval_requests', ['state', 'created_at'])
    op.create_index('ix_approvals_run', 'approval_requests', ['run_id', 'node_id'])
    op.create_table('approval_votes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('option', sa.String(length=64), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['approval_requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'actor')
    )
    op.create_index('ix_approval_votes_request_id', 'approval_votes', ['request_id'])
    op.add_column('flow_revisions', sa.Column('created_by', sa.String(length=200),
                                              nullable=True))
    op.add_column('api_tokens', sa.Column('groups', sa.JSON(), nullable=False,
                                          server_default='[]'))


def downgrade() -> None:
    op.drop_column('api_tokens', 'groups')
    op.drop_column('flow_revisions', 'created_by')
    op.drop_index('ix_approval_votes_request_id', table_name='approval_votes')
    op.drop_table('approval_votes')
    op.drop_index('ix_approvals_run', table_name='approval_requests')
    op.drop_index('ix_approvals_state', table_name='approval_requests')
    op.drop_table('approval_requests')
