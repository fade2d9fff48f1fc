"""dataset triggers: dataset updates from every system, `mode: all` waits, the watcher's
durable positions (interlock.triggers.datasets, interlock.events.assets)

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-01 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dataset_updates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ref', sa.String(length=500), nullable=False),
    sa.Column('dataset', sa.Text(), nullable=False),
    sa.Column('system', sa.String(length=200), nullable=False),
    sa.Column('job_id', sa.String(length=250), nullable=True),
    sa.Column('run_id', sa.String(length=250), nullable=True),
    sa.Column('partition', sa.String(length=250), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    op.create_index('ix_dataset_updates_dataset', 'dataset_updates', ['dataset', 'id'])
    op.create_table('dataset_waits',
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('consumed', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('watch_positions',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('position', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('watch_positions')
    op.drop_table('dataset_waits')
    op.drop_index('ix_dataset_updates_dataset', table_name='dataset_updates')
    op.drop_table('dataset_updates')
