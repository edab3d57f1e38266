"""category statistics: each workspace's running score statistics per category (zero-shot normalisation)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why: issue 19. A category whose words sit near everything must not absorb a library, so zero-shot
    # scores are read against the workspace's own distribution of each category's score. The running sums
    # (count, sum, sum of squares) per taxonomy version, score component and category are kept here and
    # updated as images arrive; `refreshed` is the image count at the last full recomputation.
    op.create_table(
        "category_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("taxonomy_version", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("total_sq", sa.Float(), nullable=False),
        sa.Column("refreshed", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_category_stats_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_stats")),
        sa.UniqueConstraint(
            "workspace_id",
            "taxonomy_version",
            "component",
            "category",
            name=op.f("uq_category_stats_key"),  # the conventional name is over 63 characters
        ),
    )


def downgrade() -> None:
    op.drop_table("category_stats")
