"""Alembic environment: runs on the engine `feedlens.storage.database.migrate` hands over."""

from __future__ import annotations

from alembic import context

from feedlens.storage.tables import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    # render_as_batch: SQLite cannot ALTER most things, so later migrations copy-and-move tables there.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
