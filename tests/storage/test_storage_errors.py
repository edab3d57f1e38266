"""A full or read-only disk is a typed StorageError (507, exit 2), on real SQLite and real files; anything
else passes through untouched. The end-to-end version (a real server on a tmpfs) is
tests/e2e/test_storage_faults.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from feedlens.api.compat.gcv import Code
from feedlens.api.compat.gcv_router import from_problem
from feedlens.core.errors import StorageError
from feedlens.core.files import check_writable, write_atomic
from feedlens.storage.database import Database
from feedlens.storage.tables import Workspace


def _cap_pages(database: Database, pages: int) -> None:
    """SQLite's own size cap: past it, writes fail with SQLITE_FULL exactly as on a full disk."""

    def cap(connection: Any, _record: Any) -> None:
        connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(database.engine, "connect", cap)


def test_a_full_sqlite_database_is_storage_full_and_rolls_back(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.migrate()
    with database.engine.connect() as conn:
        used = int(conn.execute(text("PRAGMA page_count")).scalar_one())
    database.engine.dispose()
    _cap_pages(database, used + 1)
    with pytest.raises(StorageError) as caught, database.session() as session:
        for i in range(2000):  # far more than one free page holds
            session.add(Workspace(name=f"team-{i}-" + "x" * 200))
            session.flush()
    assert caught.value.code == "storage_full" and caught.value.http_status == 507
    assert "no space left" in caught.value.message
    with database.session() as session:  # the unit of work left nothing behind
        assert session.query(Workspace).count() == 0
    database.dispose()


def test_a_read_only_sqlite_database_is_not_writable(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Database(f"sqlite:///{path}").migrate()
    read_only = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(StorageError) as caught, read_only.session() as session:
        session.add(Workspace(name="team"))
    assert caught.value.code == "storage_not_writable"
    assert "FEEDLENS_DATA_DIR" in caught.value.message
    read_only.dispose()


def test_other_database_errors_pass_through(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(Exception) as caught, database.session() as session:
        session.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(caught.value, StorageError)
    database.dispose()


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (errno.ENOSPC, "storage_full"),
        (errno.EDQUOT, "storage_full"),
        (errno.EROFS, "storage_not_writable"),
        (errno.EACCES, "storage_not_writable"),
    ],
)
def test_disk_errors_while_writing_a_file_are_typed_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: int, code: str
) -> None:
    def refuse(_fd: int) -> None:
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "fsync", refuse)  # the write reached the disk's limit while flushing
    with pytest.raises(StorageError) as caught:
        write_atomic(tmp_path / "blob", b"x" * 1000)
    assert caught.value.code == code
    assert str(tmp_path) in caught.value.message
    assert list(tmp_path.iterdir()) == []  # no temporary or half file


def test_other_os_errors_are_not_disguised_as_storage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError) as caught:
        write_atomic(tmp_path / "blob", b"x")
    assert not isinstance(caught.value, StorageError) and caught.value.errno == errno.EIO


def test_check_writable_leaves_no_probe_behind(tmp_path: Path) -> None:
    check_writable(tmp_path / "new" / "folder")
    assert list((tmp_path / "new" / "folder").iterdir()) == []


def test_google_routes_answer_507_as_resource_exhausted() -> None:
    error = from_problem(507, b'{"detail": "no space left to write /data: free some disk space"}')
    assert error.status == 507 and error.code is Code.RESOURCE_EXHAUSTED
    assert "no space left" in error.message
