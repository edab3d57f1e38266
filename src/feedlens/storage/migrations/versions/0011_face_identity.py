"""face identity: the workspaces that switched it on, face collections, people and face descriptors

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
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
    # Why: issue 20. Face identity (compare, collections) is opt-in per workspace and erasable: a row in
    # face_identity_settings switches it on; descriptors hang off collection, image and workspace with
    # ON DELETE CASCADE so every erasure path removes them (storage/face_collections.py).
    op.create_table(
        "face_identity_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("enabled_by", sa.String(length=128), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("face_identity_settings"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_face_identity_settings")),
    )
    op.create_table(
        "face_collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("face_collections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_collections")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_face_collections_workspace_id_name")),
    )
    with op.batch_alter_table("face_collections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_collections_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "face_people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _workspace_fk("face_people"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_people")),
    )
    with op.batch_alter_table("face_people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_people_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "face_scans",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_face_scans_image_id_images"), ondelete="CASCADE"
        ),
        _workspace_fk("face_scans"),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_face_scans")),
    )
    with op.batch_alter_table("face_scans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_scans_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "face_vectors",
        sa.Column("face_id", sa.String(length=36), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("image_ref", sa.String(length=36), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=True),
        sa.Column("external_image_id", sa.String(length=255), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["face_collections.id"],
            name=op.f("fk_face_vectors_collection_id_face_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_face_vectors_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["face_people.id"],
            name=op.f("fk_face_vectors_person_id_face_people"),
            ondelete="CASCADE",
        ),
        _workspace_fk("face_vectors"),
        sa.PrimaryKeyConstraint("face_id", name=op.f("pk_face_vectors")),
    )
    with op.batch_alter_table("face_vectors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_face_vectors_collection_created", ["collection_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_face_vectors_image_id"), ["image_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_vectors_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_vectors_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("face_vectors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_vectors_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_face_vectors_person_id"))
        batch_op.drop_index(batch_op.f("ix_face_vectors_image_id"))
        batch_op.drop_index("ix_face_vectors_collection_created")
    op.drop_table("face_vectors")
    with op.batch_alter_table("face_scans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_scans_workspace_id"))
    op.drop_table("face_scans")
    with op.batch_alter_table("face_people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_people_workspace_id"))
    op.drop_table("face_people")
    with op.batch_alter_table("face_collections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_collections_workspace_id"))
    op.drop_table("face_collections")
    op.drop_table("face_identity_settings")
