"""The throwaway PostgreSQL cluster: a real server, real databases, nothing left behind."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import (
    SKIP_ENV,
    PostgresCluster,
    PostgresClusterError,
    find_binaries,
    postgres_available,
    require_postgres,
    unique_database_name,
)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_cluster_serves_two_databases_and_leaves_nothing_behind() -> None:
    require_postgres()
    with PostgresCluster() as cluster:
        port, tmpdir = cluster.port, cluster.tmpdir
        assert cluster.data_dir.is_dir()
        urls = {name: cluster.create_database(name) for name in ("alpha", "beta")}
        assert urls["alpha"] == f"postgresql+psycopg://feedlens@127.0.0.1:{port}/alpha"

        for name in urls:
            with psycopg.connect(cluster.libpq_url(name)) as conn:
                conn.execute("CREATE TABLE notes (body text)")
                conn.execute("INSERT INTO notes VALUES (%s)", (f"from {name}",))
                row = conn.execute(
                    "SELECT current_database(), current_user, body, current_setting('listen_addresses'),"
                    " current_setting('fsync'), pg_encoding_to_char(encoding)"
                    " FROM notes, pg_database WHERE datname = current_database()"
                ).fetchone()
            assert row == (name, "feedlens", f"from {name}", "127.0.0.1", "off", "UTF8")

        # The unix socket lives in the cluster's own directory, not /var/run/postgresql.
        assert (tmpdir / f".s.PGSQL.{port}").is_socket()
        assert _port_open(port)

    assert not tmpdir.exists()
    assert not _port_open(port)
    assert not cluster.running


def test_drop_database_closes_leftover_connections() -> None:
    require_postgres()
    with PostgresCluster() as cluster:
        cluster.create_database("leftover")
        conn = psycopg.connect(cluster.libpq_url("leftover"))
        try:
            cluster.drop_database("leftover")
            with psycopg.connect(cluster.libpq_url("postgres")) as admin:
                left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = 'leftover'").fetchone()
            assert left == (0,)
        finally:
            conn.close()


def test_postgres_url_fixture_gives_an_empty_database(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://feedlens@127.0.0.1:")
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_database_names_are_unique_and_valid() -> None:
    names = {unique_database_name("test_thing[Case-1 / ünïcode]") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.startswith("t_test_thing_case_1_")
        assert len(name) <= 63
    with PostgresCluster() as cluster, pytest.raises(ValueError, match="database name"):
        cluster.create_database("Robert'); DROP TABLE students;--")


def test_missing_binaries_are_reported(tmp_path: Path) -> None:
    (tmp_path / "15" / "bin").mkdir(parents=True)
    assert find_binaries(tmp_path, path=str(tmp_path)) is None
    reason = postgres_available(tmp_path, path=str(tmp_path))
    assert reason is not None
    assert "install-system-deps.sh" in reason


def test_missing_binaries_fail_unless_skip_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match=SKIP_ENV):
        require_postgres(tmp_path, path=str(tmp_path))
    monkeypatch.setenv(SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception):
        require_postgres(tmp_path, path=str(tmp_path))


def test_newest_version_wins(tmp_path: Path) -> None:
    for version in ("9.6", "15", "13"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for tool in ("initdb", "pg_ctl", "createdb", "dropdb"):
            (bindir / tool).write_text("#!/bin/sh\n")
            (bindir / tool).chmod(0o755)
    found = find_binaries(tmp_path, path="")
    assert found is not None
    assert found.initdb == tmp_path / "15" / "bin" / "initdb"


def test_failed_start_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    # Not under tmp_path: that is private to root, and as root the fake initdb runs as the postgres user.
    scratch = Path(tempfile.mkdtemp(prefix="feedlens-pg-test-"))
    try:
        scratch.chmod(0o755)
        bindir, tmp = scratch / "bin", scratch / "tmp"
        bindir.mkdir(mode=0o755)
        tmp.mkdir()
        tmp.chmod(0o1777)
        for tool in ("initdb", "pg_ctl", "createdb", "dropdb"):
            (bindir / tool).write_text("#!/bin/sh\necho broken initdb >&2\nexit 1\n")
            (bindir / tool).chmod(0o755)
        binaries = find_binaries(scratch / "none", path=str(bindir))
        assert binaries is not None
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))

        cluster = PostgresCluster(binaries)
        with pytest.raises(PostgresClusterError, match="broken initdb"):
            cluster.start()
        assert list(tmp.iterdir()) == []
        assert not cluster.running
    finally:
        shutil.rmtree(scratch)
