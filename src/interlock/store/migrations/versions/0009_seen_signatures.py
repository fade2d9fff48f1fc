"""seen signatures: a pushed event's signature is accepted once (interlock.store.signatures)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('seen_signatures',
    sa.Column('signature', sa.String(length=80), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('signature')
    )
    op.create_index('ix_seen_signatures_at', 'seen_signatures', ['seen_at'])


def downgrade() -> None:
    op.drop_index('ix_seen_signatures_at', table_name='seen_signatures')
    op.drop_table('seen_signatures')
