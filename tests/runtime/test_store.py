"""The model store on real artifacts: hashes checked on load, corruption detected and repaired."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from feedlens.core.errors import ConfigError, ModelStoreError
from feedlens.runtime.conversions import default_converters
from feedlens.runtime.manifest import Manifest
from feedlens.runtime.store import ArtifactState, ModelStore
from feedlens.services.factory import Services

LOCAL_ARTIFACTS = (
    "efficientnet-lite0-pth",
    "wordnet-noun",
    "imagenet-synsets",
    "imagenet-lemmas",
    "imagenet-hierarchy",
)


@pytest.fixture()
def store_copy(services: Services, tmp_path: Path) -> ModelStore:
    """A private store holding copies of the real, verified artifacts (so tests can damage them)."""
    real = services.store
    real.pull_all()
    for name in LOCAL_ARTIFACTS:
        src = real.artifact_path(name)
        dest = tmp_path / src.relative_to(real.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        for f in src.parent.iterdir():
            shutil.copy2(f, dest.parent / f.name)
    return ModelStore(tmp_path, Manifest.load(), default_converters())


def test_real_store_verifies(services: Services) -> None:
    states = {s.spec.name: s.state for s in services.store.statuses()}
    assert set(states.values()) == {ArtifactState.OK}, states


def test_corrupt_artifact_is_detected_and_repulled(store_copy: ModelStore) -> None:
    path = store_copy.artifact_path("efficientnet-lite0-pth")
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    assert store_copy.status("efficientnet-lite0-pth").state is ArtifactState.CORRUPT
    with pytest.raises(ModelStoreError) as info:
        store_copy.path("efficientnet-lite0-pth")
    assert info.value.fix == "feedlens store pull efficientnet-lite0-pth"
    assert "SHA-256" in info.value.message
    store_copy.pull("efficientnet-lite0-pth")
    assert store_copy.status("efficientnet-lite0-pth").state is ArtifactState.OK
    assert store_copy.path("efficientnet-lite0-pth") == path


def test_missing_artifact_names_the_fixing_command(store_copy: ModelStore) -> None:
    store_copy.artifact_path("wordnet-noun").unlink()
    with pytest.raises(ModelStoreError) as info:
        store_copy.path("wordnet-noun")
    assert info.value.fix == "feedlens store pull wordnet-noun"
    assert "feedlens store pull wordnet-noun" in str(info.value)


def test_corrupt_conversion_is_rebuilt_on_load(store_copy: ModelStore) -> None:
    path = store_copy.path("imagenet-hierarchy")
    good = path.read_bytes()
    path.write_text('{"tampered": true}')
    rebuilt = store_copy.path("imagenet-hierarchy")
    assert rebuilt.read_bytes() == good
    assert json.loads(good)["classes"][281]["wnid"] == "n02123045"


def test_change_after_verification_is_noticed(store_copy: ModelStore) -> None:
    path = store_copy.path("wordnet-noun")
    with path.open("ab") as fh:  # size changes, so the per-process verification cache must not trust it
        fh.write(b"x")
    with pytest.raises(ModelStoreError):
        store_copy.path("wordnet-noun")


def test_user_path_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = Manifest.model_validate(
        {
            "manifest_version": 1,
            "artifacts": [
                {
                    "name": "my-clip",
                    "version": "1",
                    "file": "clip.onnx",
                    "source": {"kind": "user_path", "env": "FEEDLENS_TEST_CLIP"},
                }
            ],
        }
    )
    store = ModelStore(tmp_path / "models", manifest, {})
    with pytest.raises(ModelStoreError, match="set FEEDLENS_TEST_CLIP"):
        store.pull("my-clip")
    weights = tmp_path / "weights.onnx"
    weights.write_bytes(b"user weights")
    monkeypatch.setenv("FEEDLENS_TEST_CLIP", str(weights))
    path = store.pull("my-clip")
    assert path.read_bytes() == b"user weights"
    assert store.status("my-clip").state is ArtifactState.OK  # hash recorded at pull
    path.write_bytes(b"swapped")
    assert store.status("my-clip").state is ArtifactState.CORRUPT


def test_unknown_artifact_and_converter_fail_loudly(tmp_path: Path) -> None:
    manifest = Manifest.model_validate(
        {
            "manifest_version": 1,
            "artifacts": [
                {
                    "name": "x",
                    "version": "1",
                    "file": "x.bin",
                    "source": {"kind": "conversion", "converter": "nope", "inputs": []},
                }
            ],
        }
    )
    store = ModelStore(tmp_path, manifest, {})
    with pytest.raises(ConfigError, match="unknown model artifact"):
        store.path("y")
    with pytest.raises(ConfigError, match="no converter named 'nope'"):
        store.pull("x")


@pytest.mark.parametrize(
    "artifact",
    [
        {
            "name": "a",
            "version": "1",
            "file": "a",
            "source": {"kind": "system_file", "path": "/x", "debian_package": "p"},
        },  # no sha256
        {
            "name": "a",
            "version": "1",
            "file": "../a",
            "sha256": "0" * 64,
            "source": {"kind": "system_file", "path": "/x", "debian_package": "p"},
        },  # path escape
        {"name": "a", "version": "1", "file": "a", "sha256": "0" * 64, "source": {"kind": "ftp"}},
    ],
)
def test_invalid_manifests_are_refused(tmp_path: Path, artifact: dict[str, object]) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"manifest_version": 1, "artifacts": [artifact]}))
    with pytest.raises(ConfigError, match="manifest"):
        Manifest.load(path)


def test_source_that_changed_upstream_is_refused(tmp_path: Path) -> None:
    fake_system_file = tmp_path / "data.noun"
    fake_system_file.write_text("not wordnet")
    manifest = Manifest.model_validate(
        {
            "manifest_version": 1,
            "artifacts": [
                {
                    "name": "wn",
                    "version": "1",
                    "file": "data.noun",
                    "sha256": "a" * 64,
                    "source": {"kind": "system_file", "path": str(fake_system_file), "debian_package": "p"},
                }
            ],
        }
    )
    store = ModelStore(tmp_path / "models", manifest, {})
    with pytest.raises(ModelStoreError, match="pins"):
        store.pull("wn")
    assert not store.artifact_path("wn").exists()  # nothing half-written is left behind
