"""embeddings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:02:17.060555
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why: search needs each image's vectors (visual, content, caption-fused semantic) with the model
    # version that made them; the vector index files are rebuilt from this table, the source of truth.
    op.create_table(
        "embeddings",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_embeddings_image_id_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("image_id", "kind", name=op.f("pk_embeddings")),
    )
    with op.batch_alter_table("embeddings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_embeddings_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("embeddings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_embeddings_created_at"))

    op.drop_table("embeddings")
