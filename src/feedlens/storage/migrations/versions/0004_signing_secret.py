"""api_keys.signing_secret for AWS Signature V4

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why: the Rekognition-compatible API authenticates AWS SigV4 requests, whose HMAC the server must
    # recompute. Keys are stored hashed, so each key gets a derived signing secret. Keys created earlier
    # have none until their holder runs `feedlens keys aws KEY` (which derives and stores it).
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_secret", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("signing_secret")
