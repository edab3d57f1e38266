from __future__ import annotations

from pathlib import Path

import pytest

from feedlens.config import load_settings
from feedlens.core.errors import ConfigError


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEEDLENS_HOME", str(tmp_path))
    monkeypatch.setenv("FEEDLENS_DECODE__MAX_PIXELS", "1000")
    settings = load_settings()
    assert settings.models_dir == tmp_path / "models"
    assert settings.decode.max_pixels == 1000


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FEEDLENS_BATCH_SIZE", "0"),
        ("FEEDLENS_DECODE__MAX_BYTES", "-1"),
        ("FEEDLENS_THREADS_PER_WORKER", "many"),
        ("FEEDLENS_THREADS_PER_WORKER", "1000"),  # oversubscribes any core count here
        ("FEEDLENS_LABELS_CONCEPT_MIN_SCORE", "2"),
    ],
)
def test_bad_values_are_config_errors(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match="invalid FEEDLENS_"):
        load_settings()
