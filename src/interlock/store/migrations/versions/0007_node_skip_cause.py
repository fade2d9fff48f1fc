"""node_runs.skip_cause: why a node was skipped, as a value (`interlock.states.SkipCause`)

`retry` used to tell a node skipped by its own `if:` from one skipped because of its
upstream by comparing the reason's prose; it now reads this column. Existing skipped
rows are classified once from the prose the planner wrote until now.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

NODE_RUNS = sa.table('node_runs', sa.column('state', sa.String()),
                     sa.column('reason', sa.Text()), sa.column('skip_cause', sa.String()))
CONDITION_REASON = '`if:` is false'  # the planner's prose for a false `if:` until now


def upgrade() -> None:
    with op.batch_alter_table('node_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skip_cause', sa.String(length=16), nullable=True))
    skipped = NODE_RUNS.c.state == 'skipped'
    op.execute(NODE_RUNS.update().where(skipped, NODE_RUNS.c.reason == CONDITION_REASON)
               .values(skip_cause='condition'))
    op.execute(NODE_RUNS.update().where(skipped, NODE_RUNS.c.skip_cause.is_(None))
               .values(skip_cause='upstream'))


def downgrade() -> None:
    with op.batch_alter_table('node_runs', schema=None) as batch_op:
        batch_op.drop_column('skip_cause')
