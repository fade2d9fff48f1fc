"""lineage: jobs, datasets, edges, job parents, runs, dataset history, events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lineage_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('namespace', sa.String(length=250), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('system', sa.String(length=200), nullable=False),
    sa.Column('facets', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('namespace', 'name')
    )
    op.create_table('lineage_datasets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('namespace', sa.String(length=250), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('facets', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('namespace', 'name')
    )
    op.create_table('lineage_edges',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['lineage_datasets.id']),
    sa.ForeignKeyConstraint(['job_id'], ['lineage_jobs.id']),
    sa.PrimaryKeyConstraint('job_id', 'direction', 'dataset_id', 'source')
    )
    with op.batch_alter_table('lineage_edges', schema=None) as batch_op:
        batch_op.create_index('ix_lineage_edges_dataset', ['dataset_id', 'direction', 'job_id'],
                              unique=False)

    op.create_table('lineage_job_parents',
    sa.Column('parent_id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['lineage_jobs.id']),
    sa.ForeignKeyConstraint(['parent_id'], ['lineage_jobs.id']),
    sa.PrimaryKeyConstraint('parent_id', 'child_id')
    )
    with op.batch_alter_table('lineage_job_parents', schema=None) as batch_op:
        batch_op.create_index('ix_lineage_job_parents_child', ['child_id', 'parent_id'],
                              unique=False)

    op.create_table('lineage_runs',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=True),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('parent_run_id', sa.String(length=36), nullable=True),
    sa.Column('parent_job_namespace', sa.String(length=250), nullable=True),
    sa.Column('parent_job_name', sa.String(length=500), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('facets', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['lineage_jobs.id']),
    sa.PrimaryKeyConstraint('run_id')
    )
    with op.batch_alter_table('lineage_runs', schema=None) as batch_op:
        batch_op.create_index('ix_lineage_runs_job', ['job_id', 'event_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_lineage_runs_parent_run_id'), ['parent_run_id'],
                              unique=False)

    op.create_table('lineage_io',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['lineage_datasets.id']),
    sa.ForeignKeyConstraint(['job_id'], ['lineage_jobs.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'dataset_id', 'direction')
    )
    with op.batch_alter_table('lineage_io', schema=None) as batch_op:
        batch_op.create_index('ix_lineage_io_history', ['dataset_id', 'at', 'id'], unique=False)

    op.create_table('lineage_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('event_type', sa.String(length=16), nullable=True),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('lineage_events', schema=None) as batch_op:
        batch_op.create_index('ix_lineage_events_run', ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lineage_events', schema=None) as batch_op:
        batch_op.drop_index('ix_lineage_events_run')
    op.drop_table('lineage_events')
    with op.batch_alter_table('lineage_io', schema=None) as batch_op:
        batch_op.drop_index('ix_lineage_io_history')
    op.drop_table('lineage_io')
    with op.batch_alter_table('lineage_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lineage_runs_parent_run_id'))
        batch_op.drop_index('ix_lineage_runs_job')
    op.drop_table('lineage_runs')
    with op.batch_alter_table('lineage_job_parents', schema=None) as batch_op:
        batch_op.drop_index('ix_lineage_job_parents_child')
    op.drop_table('lineage_job_parents')
    with op.batch_alter_table('lineage_edges', schema=None) as batch_op:
        batch_op.drop_index('ix_lineage_edges_dataset')
    op.drop_table('lineage_edges')
    op.drop_table('lineage_datasets')
    op.drop_table('lineage_jobs')
