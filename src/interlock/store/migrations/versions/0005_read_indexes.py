"""indexes for dashboards, metrics and traces

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 07:35:00
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

INDEXES = [
    ('ix_runs_created', 'runs', ['created_at', 'id']),
    ('ix_attempts_created', 'attempts', ['created_at']),
    ('ix_state_events_finished', 'state_events', ['entity', 'to_state']),
    ('ix_external_runs_attempt', 'external_runs', ['attempt_id']),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
