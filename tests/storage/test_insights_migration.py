"""Migration 0010 (audience insights) on SQLite and PostgreSQL: it creates the tables
storage/insights_tables.py declares, matching the models, and downgrades to 0009 (through any later
migration) and back up to the head."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from feedlens.storage import insights_tables
from feedlens.storage.database import Database, alembic_config, current_revision
from feedlens.storage.tables import Base

INSIGHT_TABLES = {
    "insight_images",
    "insight_posts",
    "insight_places",
    "insight_alert_rules",
    "insight_alerts",
    "insight_engagements",
}


def test_0010_upgrades_matches_the_models_and_downgrades(database_url: str) -> None:
    database = Database(database_url)
    try:
        database.migrate()
        assert (current_revision(database.engine) or "") >= "0010"  # 0011 (face identity) may follow
        assert set(inspect(database.engine).get_table_names()) >= INSIGHT_TABLES
        with database.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        # other migrations' drift is their tests' business; nothing about the insight tables may differ
        assert [d for d in diff if "insight_" in repr(d)] == []
        config = alembic_config(database.engine)
        command.downgrade(config, "0009")
        assert current_revision(database.engine) == "0009"
        assert not INSIGHT_TABLES & set(inspect(database.engine).get_table_names())
        command.upgrade(config, "head")
        assert set(inspect(database.engine).get_table_names()) >= INSIGHT_TABLES
    finally:
        database.dispose()


def test_every_insight_table_is_declared() -> None:
    assert Base.metadata.tables["insight_images"] is insights_tables.InsightImage.__table__
    assert {n for n in Base.metadata.tables if n.startswith("insight_")} == INSIGHT_TABLES
