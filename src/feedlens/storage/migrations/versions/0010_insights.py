"""audience insights: sentiment of images and posts, places, alert rules and alerts, followers' engagements

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why: issue 26. How posts feel (one score per image and per post, its parts kept), where they come
    # from (only kept with FEEDLENS_STORE_METADATA=all), the team's negative-share alert rules with one
    # alert per (rule, period) so a jump fires once, and followers' engagements for recommendations.
    op.create_table(
        "insight_alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("bucket", sa.String(length=8), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("min_rise", sa.Float(), nullable=False),
        sa.Column("min_posts", sa.Integer(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_insight_alert_rules_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_alert_rules")),
    )
    with op.batch_alter_table("insight_alert_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_insight_alert_rules_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "insight_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.Column("negative_share", sa.Float(), nullable=False),
        sa.Column("previous_share", sa.Float(), nullable=True),
        sa.Column("webhook_status", sa.String(length=16), nullable=False),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["insight_alert_rules.id"],
            name=op.f("fk_insight_alerts_rule_id_insight_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_insight_alerts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_alerts")),
        sa.UniqueConstraint("rule_id", "period", name=op.f("uq_insight_alerts_rule_id_period")),
    )
    with op.batch_alter_table("insight_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insight_alerts_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "insight_engagements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("follower", sa.String(length=256), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_insight_engagements_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_insight_engagements_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_engagements")),
        sa.UniqueConstraint(
            "workspace_id",
            "follower",
            "image_id",
            "kind",
            name=op.f("uq_insight_engagements_workspace_id_follower_image_id_kind"),
        ),
    )
    with op.batch_alter_table("insight_engagements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insight_engagements_image_id"), ["image_id"], unique=False)
        batch_op.create_index(
            "ix_insight_engagements_workspace_follower", ["workspace_id", "follower"], unique=False
        )

    op.create_table(
        "insight_images",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("caption", sa.Float(), nullable=True),
        sa.Column("image_text", sa.Float(), nullable=True),
        sa.Column("faces", sa.Float(), nullable=True),
        sa.Column("places_scanned", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_insight_images_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_insight_images_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_insight_images")),
    )
    with op.batch_alter_table("insight_images", schema=None) as batch_op:
        batch_op.create_index("ix_insight_images_workspace_label", ["workspace_id", "label"], unique=False)

    op.create_table(
        "insight_places",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_insight_places_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_insight_places_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "source", name=op.f("pk_insight_places")),
    )
    with op.batch_alter_table("insight_places", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insight_places_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "insight_posts",
        sa.Column("post_pk", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("caption", sa.Float(), nullable=True),
        sa.Column("image_text", sa.Float(), nullable=True),
        sa.Column("faces", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_pk"], ["posts.id"], name=op.f("fk_insight_posts_post_pk_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_insight_posts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_pk", name=op.f("pk_insight_posts")),
    )
    with op.batch_alter_table("insight_posts", schema=None) as batch_op:
        batch_op.create_index("ix_insight_posts_workspace_label", ["workspace_id", "label"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("insight_posts", schema=None) as batch_op:
        batch_op.drop_index("ix_insight_posts_workspace_label")

    op.drop_table("insight_posts")
    with op.batch_alter_table("insight_places", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insight_places_workspace_id"))

    op.drop_table("insight_places")
    with op.batch_alter_table("insight_images", schema=None) as batch_op:
        batch_op.drop_index("ix_insight_images_workspace_label")

    op.drop_table("insight_images")
    with op.batch_alter_table("insight_engagements", schema=None) as batch_op:
        batch_op.drop_index("ix_insight_engagements_workspace_follower")
        batch_op.drop_index(batch_op.f("ix_insight_engagements_image_id"))

    op.drop_table("insight_engagements")
    with op.batch_alter_table("insight_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insight_alerts_workspace_id"))

    op.drop_table("insight_alerts")
    with op.batch_alter_table("insight_alert_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insight_alert_rules_workspace_id"))

    op.drop_table("insight_alert_rules")
