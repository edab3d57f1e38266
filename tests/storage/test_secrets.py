"""The data folder's shared secrets: made once, whole, 0600; agreed on by processes starting together;
a damaged file replaced; a folder that cannot be written is an OSError the caller handles."""

from __future__ import annotations

import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from feedlens.services.factory import Services
from feedlens.storage.secrets import SIZE, shared_secret


def test_made_once_then_read_back(tmp_path: Path) -> None:
    first = shared_secret(tmp_path / "secrets", "web-session")
    assert len(first) == SIZE and shared_secret(tmp_path / "secrets", "web-session") == first
    path = tmp_path / "secrets" / "web-session.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert shared_secret(tmp_path / "secrets", "other") != first  # one per name
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == ["other.key", "web-session.key"]


def test_processes_starting_together_agree(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        found = set(pool.map(shared_secret, [tmp_path] * 8, ["web-session"] * 8))
    assert len(found) == 1


def test_a_damaged_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "web-session.key").write_bytes(b"short")
    fresh = shared_secret(tmp_path, "web-session")
    assert len(fresh) == SIZE and (tmp_path / "web-session.key").read_bytes() == fresh


def test_a_folder_that_cannot_be_written_keeps_sessions_per_process(
    services: Services, tmp_path: Path
) -> None:
    """Where the secrets folder is unusable (here a file stands where it should be: an OSError even for
    root) the API still starts, with a fresh secret per process, as before this file existed."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secrets").write_bytes(b"")
    with pytest.raises(OSError):
        shared_secret(tmp_path / "data" / "secrets", "web-session")
    wired = services.with_settings(services.settings.model_copy(update={"data_dir": tmp_path / "data"}))
    one, two = wired.session_secret(), wired.session_secret()
    assert len(one) == len(two) == SIZE and one != two
    shared = services.with_settings(services.settings.model_copy(update={"data_dir": tmp_path / "ok"}))
    assert shared.session_secret() == shared.session_secret()
