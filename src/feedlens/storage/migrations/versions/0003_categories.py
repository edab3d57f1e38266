"""categories: taxonomies, labels, trained models

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why: each workspace sorts images into its own categories. Taxonomies are versioned (results name
    # the version that made them); labels are ground truth for trained models and survive taxonomy
    # changes (keyed by category name); trained models keep weights with their metrics and parameters.
    # Category results themselves are `analyses` rows (analyzer "categories") with `facets` for filters.
    op.create_table(
        "taxonomies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_taxonomies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taxonomies")),
        sa.UniqueConstraint("workspace_id", "version", name=op.f("uq_taxonomies_workspace_id_version")),
    )
    op.create_table(
        "category_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_category_labels_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_category_labels_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_labels")),
        sa.UniqueConstraint("image_id", "category", name=op.f("uq_category_labels_image_id_category")),
    )
    with op.batch_alter_table("category_labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_category_labels_image_id"), ["image_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_category_labels_workspace_id"), ["workspace_id"], unique=False)
    op.create_table(
        "category_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("taxonomy_version", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_category_models_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_models")),
        sa.UniqueConstraint("workspace_id", "version", name=op.f("uq_category_models_workspace_id_version")),
    )


def downgrade() -> None:
    op.drop_table("category_models")
    with op.batch_alter_table("category_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_category_labels_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_category_labels_image_id"))
    op.drop_table("category_labels")
    op.drop_table("taxonomies")
