"""audit_pending: records committed while another transaction held the audit chain's
head, waiting to be chained by the next sealer (docs/audit.md, "Appends without a hot row")

Only adds a table: a process of the previous release, which appends under the head's lock
straight into audit_log, keeps working beside the new one (both take the same lock).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_pending',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('origin', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    # Records still pending would be lost: a downgrade runs after `interlock audit verify`,
    # which chains them first.
    op.drop_table('audit_pending')
