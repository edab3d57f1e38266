"""Shared fixtures: real settings, the real model store, real sample photos."""

from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.config import Settings, load_settings
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services, build_services
from feedlens.storage.database import Database
from tests.support.postgres import postgres_cluster, postgres_url  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]

# Two pytest workers and the servers they start share the machine's cores: one inference thread per
# process (ONNX Runtime, torch, BLAS) instead of each spinning a thread per core against the others.
# Measured on the 2-core box: 17% less CPU for the same tests. Set before any settings or torch load.
os.environ.setdefault("FEEDLENS_THREADS_PER_WORKER", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# `make test` runs two pytest-xdist workers, each taking whole files in collection order. These files
# take a minute or more each (servers with every model, training, fuzzing); started first, they do not
# leave one worker alone on a long file at the end of the run while the other idles (longest first).
SLOW_FIRST = (
    "tests/e2e/test_training_api.py",
    "tests/e2e/test_training_cli.py",
    "tests/training/test_finetune.py",
    "tests/test_fuzz.py",
    "tests/e2e/test_readme_commands.py",
    "tests/e2e/test_ingest_resume.py",
    "tests/services/test_categories.py",
    "tests/e2e/test_api.py",
    "tests/services/test_learning.py",
    "tests/services/test_training_service.py",
    "tests/e2e/test_web_review.py",
    "tests/e2e/test_search_api.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files in SLOW_FIRST first, in that order; every other test keeps its place (a stable sort)."""
    rank = {name: n for n, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.relative_to(REPO).as_posix(), len(rank)))


def _load_sample_script() -> Callable[[Path], None]:
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts" / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main: Callable[[Path], None] = module.main
    return main


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real photos scikit-image, scikit-learn and matplotlib ship (copied by the set-up script)."""
    dest = tmp_path_factory.mktemp("samples")
    _load_sample_script()(dest)
    return dest


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def services(settings: Settings) -> Services:
    return build_services(settings)


@pytest.fixture(scope="session")
def decoder(settings: Settings) -> ImageDecoder:
    return ImageDecoder(settings.decode)


@pytest.fixture(scope="session")
def labels(services: Services) -> LabelsAnalyzer:
    analyzer = LabelsAnalyzer(services.store, services.settings)
    analyzer.load()
    return analyzer


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


@pytest.fixture(scope="session")
def chelsea(sample_dir: Path) -> Image.Image:
    return Image.open(sample_dir / "chelsea.png").convert("RGB")


def gradient(width: int, height: int) -> Image.Image:
    """A smooth synthetic RGB image (cheap to encode at any size)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs twice: on a SQLite file and on a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedlens.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database on `database_url` (SQLite file, then throwaway PostgreSQL), disposed after."""
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def stored_services(services: Services, tmp_path: Path, database_url: str) -> Iterator[Services]:
    """Services over a fresh, migrated database and blob store; models shared with `services`."""
    settings = services.settings.model_copy(update={"data_dir": tmp_path, "database_url": database_url})
    wired = services.with_settings(settings)
    wired.database.migrate()
    yield wired
    wired.database.dispose()
