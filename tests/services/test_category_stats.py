"""The workspace statistics of zero-shot category scores (storage/category_stats.py, migration 0009) on
SQLite and PostgreSQL: the migration creates the table the model declares from a database at 0008, the
sums add up and are replaced by a recomputation, and recategorising a freshly migrated workspace works.

Regression: a schemathesis run once got `POST /v1/categories/recategorize` answering 500 "no such table:
category_stats"; every path that opens a workspace database migrates it to the head, which has the table.
"""

from __future__ import annotations

import numpy as np
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.storage import category_stats as stats
from feedlens.storage.database import Database, alembic_config, current_revision, head_revision
from feedlens.storage.tables import Base

COMPONENTS, CATEGORIES = ("labels", "visual"), ("animals", "music", "sports")


def test_0009_upgrades_from_0008_matches_the_model_and_downgrades(database_url: str) -> None:
    database = Database(database_url)
    try:
        config = alembic_config(database.engine)
        command.upgrade(config, "0008")  # a workspace database made before category statistics existed
        assert "category_stats" not in inspect(database.engine).get_table_names()
        database.migrate()  # what the API, the CLI and every service do when they open a database
        assert current_revision(database.engine) == head_revision()
        assert "category_stats" in inspect(database.engine).get_table_names()
        assert Base.metadata.tables["category_stats"] is stats.CategoryStat.__table__
        with database.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        # other migrations' drift is their tests' business; nothing about this table may differ
        assert [d for d in diff if "category_stats" in repr(d)] == []
        command.downgrade(config, "0008")
        assert "category_stats" not in inspect(database.engine).get_table_names()
        command.upgrade(config, "head")
        assert "category_stats" in inspect(database.engine).get_table_names()
    finally:
        database.dispose()


def test_sums_add_up_and_a_recomputation_replaces_them(db: Database) -> None:
    workspace = AccessService(db).create_workspace("stats")
    ones = np.ones((len(COMPONENTS), len(CATEGORIES)))
    with db.session() as session:
        n, total, total_sq, refreshed = stats.read(session, workspace, 1, COMPONENTS, CATEGORIES)
        assert not n.any() and not total.any() and refreshed == 0  # nothing stored: zeros
        stats.add(session, workspace, 1, COMPONENTS, CATEGORIES, (ones * 2, ones * 0.5, ones * 0.25))
        stats.add(session, workspace, 1, COMPONENTS, CATEGORIES, (ones, ones * 0.25, ones * 0.0625))
    with db.session() as session:
        n, total, total_sq, refreshed = stats.read(session, workspace, 1, COMPONENTS, CATEGORIES)
        np.testing.assert_allclose(n, 3)
        np.testing.assert_allclose(total, 0.75)
        np.testing.assert_allclose(total_sq, 0.3125)
        # a category the taxonomy no longer has is not read; one it gained reads as zeros
        n2, *_ = stats.read(session, workspace, 1, COMPONENTS, ("animals", "buildings"))
        assert n2[:, 0].tolist() == [3.0, 3.0] and n2[:, 1].tolist() == [0.0, 0.0]
        stats.replace(session, workspace, 2, COMPONENTS, CATEGORIES, (ones * 10, ones, ones), 10)
    with db.session() as session:
        n, total, _, refreshed = stats.read(session, workspace, 2, COMPONENTS, CATEGORIES)
        np.testing.assert_allclose(n, 10)
        np.testing.assert_allclose(total, 1.0)
        assert refreshed == 10
        old, *_ = stats.read(session, workspace, 1, COMPONENTS, CATEGORIES)
        assert not old.any()  # older taxonomy versions' rows are dropped


def test_recategorize_works_on_a_freshly_migrated_workspace(stored_services: Services) -> None:
    """The fuzzer's case at the service level: an empty workspace, then one image's worth of statistics."""
    database = stored_services.database
    workspace = AccessService(database).create_workspace("fresh")
    categories = stored_services.categories
    assert categories.recategorize(workspace) == 0
    compiled = categories.categoriser(workspace).compiled
    with database.session() as session:
        n, *_ = stats.read(session, workspace, compiled.version, COMPONENTS, compiled.names)
    assert not n.any()
