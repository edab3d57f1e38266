"""Replicas starting together on one new PostgreSQL database: each migrates it, and none fails."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from feedlens.storage.database import Database, schema_is_current


def test_servers_starting_together_migrate_one_database(postgres_url: str) -> None:
    databases = [Database(postgres_url) for _ in range(3)]  # three processes, three engines
    try:
        with ThreadPoolExecutor(len(databases)) as pool:
            list(pool.map(Database.migrate, databases))  # raises if any of them failed
        assert schema_is_current(databases[0].engine)
    finally:
        for database in databases:
            database.dispose()
