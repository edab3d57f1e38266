"""model registry: trained models, deployments (production alias, A/B), their events, recorded predictions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    # Why: issue 7. A trained model is an immutable version (artifacts live in the blob store, kind
    # "models"/"reports"); what serves a task is a separate, mutable deployment row, so promote and
    # rollback are one-row updates and the event table keeps the history rollback walks back through.
    op.create_table(
        "trained_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("dataset_hash", sa.String(length=64), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("training", sa.JSON(), nullable=False),
        sa.Column("artifacts", sa.JSON(), nullable=False),
        sa.Column("runtime", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("trained_models"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["trained_models.id"],
            name=op.f("fk_trained_models_parent_id_trained_models"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trained_models")),
        sa.UniqueConstraint(
            "workspace_id", "task", "version", name=op.f("uq_trained_models_workspace_id_task_version")
        ),
    )
    with op.batch_alter_table("trained_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trained_models_workspace_id"), ["workspace_id"], unique=False)
    op.create_table(
        "model_deployments",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("production_id", sa.Integer(), nullable=True),
        sa.Column("candidate_id", sa.Integer(), nullable=True),
        sa.Column("ab_mode", sa.String(length=8), nullable=False),
        sa.Column("ab_share", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("model_deployments"),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["trained_models.id"],
            name=op.f("fk_model_deployments_production_id_trained_models"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["trained_models.id"],
            name=op.f("fk_model_deployments_candidate_id_trained_models"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "task", name=op.f("pk_model_deployments")),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("deployment_events"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["trained_models.id"],
            name=op.f("fk_deployment_events_model_id_trained_models"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_events")),
    )
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployment_events_workspace_id"), ["workspace_id"], unique=False)
    op.create_table(
        "model_predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("served", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("model_predictions"),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_model_predictions_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["trained_models.id"],
            name=op.f("fk_model_predictions_model_id_trained_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_predictions")),
        sa.UniqueConstraint("image_id", "model_id", name=op.f("uq_model_predictions_image_id_model_id")),
    )
    with op.batch_alter_table("model_predictions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_predictions_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_predictions_image_id"), ["image_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_predictions_model_id"), ["model_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_predictions_model_id"))
        batch_op.drop_index(batch_op.f("ix_model_predictions_image_id"))
        batch_op.drop_index(batch_op.f("ix_model_predictions_workspace_id"))
    op.drop_table("model_predictions")
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_events_workspace_id"))
    op.drop_table("deployment_events")
    op.drop_table("model_deployments")
    with op.batch_alter_table("trained_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trained_models_workspace_id"))
    op.drop_table("trained_models")
