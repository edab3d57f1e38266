"""feedback: corrections, the moderation review queue and moderation decisions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _fks(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f(f"fk_{table}_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f(f"fk_{table}_image_id_images"), ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    # Why: issue 8. Corrections are kept as history (newest wins) with what the system said before;
    # the review queue is its own table (states change on every scan and decision, images rows do not);
    # decisions keep the verdict and risk they overruled or confirmed, for threshold calibration.
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=256), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_fks("corrections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_corrections_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_corrections_image_id"), ["image_id"], unique=False)
    op.create_table(
        "review_items",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("risk", sa.Float(), nullable=True),
        sa.Column("uncertainty", sa.Float(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("safety_version", sa.String(length=256), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *_fks("review_items"),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_review_items")),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_items_workspace_state_priority", ["workspace_id", "state", "priority"], unique=False
        )
    op.create_table(
        "moderation_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("verdict_before", sa.String(length=16), nullable=True),
        sa.Column("risk", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_fks("moderation_decisions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_decisions")),
    )
    with op.batch_alter_table("moderation_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_moderation_decisions_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_moderation_decisions_image_id"), ["image_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("moderation_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_decisions_image_id"))
        batch_op.drop_index(batch_op.f("ix_moderation_decisions_workspace_id"))
    op.drop_table("moderation_decisions")
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_review_items_workspace_state_priority")
    op.drop_table("review_items")
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_corrections_image_id"))
        batch_op.drop_index(batch_op.f("ix_corrections_workspace_id"))
    op.drop_table("corrections")
