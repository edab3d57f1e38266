"""embedding sequence: a number that grows with every vector written, for indexes to catch up by

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why: issue 21. Each replica's in-memory index loads the rows written since the bound it last read
    # (storage/embeddings.py); rows written before this migration have 0 and are read by a first full sync.
    with op.batch_alter_table("embeddings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_embeddings_seq"), ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("embeddings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_embeddings_seq"))
        batch_op.drop_column("seq")
