"""learning cycles: the retraining loop's history (candidate vs production on a shared holdout)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why: issue 8's loop must show its learning curve (metric vs labels) and why each candidate was or
    # was not promoted; versions are numbers, not foreign keys, so the history outlives deleted models.
    op.create_table(
        "learning_cycles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("holdout", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("candidate_score", sa.Float(), nullable=True),
        sa.Column("production_version", sa.Integer(), nullable=True),
        sa.Column("production_score", sa.Float(), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_learning_cycles_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learning_cycles")),
    )
    with op.batch_alter_table("learning_cycles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_learning_cycles_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("learning_cycles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learning_cycles_workspace_id"))
    op.drop_table("learning_cycles")
