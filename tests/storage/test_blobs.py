"""The content-addressed blob store on a real temporary folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from feedlens.storage.blobs import KINDS, BlobStore


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_names_blobs_by_sha256_and_lays_them_out(store: BlobStore) -> None:
    data = b"some image bytes"
    digest = store.put("originals", data)
    assert digest == hashlib.sha256(data).hexdigest()
    expected = store.root / "originals" / digest[:2] / digest[2:4] / digest
    assert store.path("originals", digest) == expected
    assert expected.read_bytes() == data
    assert store.get("originals", digest) == data
    assert store.exists("originals", digest)
    assert _files(store.root) == [expected]


def test_same_content_is_one_file(store: BlobStore) -> None:
    first = store.put("originals", b"same")
    second = store.put("originals", b"same")
    assert first == second
    assert store.count("originals") == 1
    assert len(_files(store.root)) == 1
    # A kind is its own namespace: the same bytes as a thumbnail are a second file.
    store.put("thumbnails", b"same")
    assert store.count("thumbnails") == 1 and len(_files(store.root)) == 2


def test_put_as_stores_under_a_given_name(store: BlobStore) -> None:
    original = store.put("originals", b"original")
    path = store.put_as("thumbnails", original, b"thumbnail bytes")
    assert path == store.path("thumbnails", original)
    assert store.get("thumbnails", original) == b"thumbnail bytes"
    # Existing content wins: a second write under the same name is a no-op.
    store.put_as("thumbnails", original, b"other bytes")
    assert store.get("thumbnails", original) == b"thumbnail bytes"


def test_empty_content_is_a_blob(store: BlobStore) -> None:
    digest = store.put("staging", b"")
    assert digest == hashlib.sha256(b"").hexdigest()
    assert store.get("staging", digest) == b""


@pytest.mark.parametrize(
    "name",
    [
        "../" + "a" * 61,
        "../../etc/passwd",
        "a" * 63,
        "a" * 65,
        "A" * 64,  # upper case is not what put() makes
        "g" * 64,
        "a" * 63 + "/",
        "a" * 62 + "/.",
        "/" + "a" * 63,
        "a" * 64 + "\n",
        "",
    ],
)
def test_path_refuses_names_that_are_not_sha256(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        store.path("originals", name)
    with pytest.raises(ValueError):
        store.put_as("originals", name, b"x")
    with pytest.raises(ValueError):
        store.get("originals", name)
    with pytest.raises(ValueError):
        store.delete("originals", name)
    assert not store.root.exists()  # nothing was written anywhere


@pytest.mark.parametrize("kind", ["unknown", "", "..", "originals/..", "Originals"])
def test_unknown_kind_is_refused(store: BlobStore, kind: str) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(ValueError, match="kind"):
        store.path(kind, digest)
    with pytest.raises(ValueError, match="kind"):
        store.put(kind, b"x")
    assert not store.root.exists()


def test_delete_returns_whether_it_deleted(store: BlobStore) -> None:
    digest = store.put("originals", b"to delete")
    assert store.delete("originals", digest) is True
    assert not store.exists("originals", digest)
    assert store.delete("originals", digest) is False
    assert store.delete("thumbnails", digest) is False  # never stored there
    with pytest.raises(FileNotFoundError):
        store.get("originals", digest)


def test_no_partial_files_are_left(store: BlobStore) -> None:
    for i in range(20):
        store.put("originals", f"blob {i}".encode() * 1000)
    store.put("originals", b"blob 0" * 1000)  # a repeat
    leftovers = [p for p in store.root.rglob("*") if p.name.startswith(".partial-")]
    assert leftovers == []
    assert store.count("originals") == 20


def test_failed_write_leaves_no_partial_file(store: BlobStore) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    store.path("originals", digest).parent.mkdir(parents=True)
    with pytest.raises(TypeError):
        store.put_as("originals", digest, "not bytes")  # type: ignore[arg-type]
    assert _files(store.root) == []


def test_count_ignores_temporary_files_and_other_kinds(store: BlobStore) -> None:
    assert {kind: store.count(kind) for kind in KINDS} == dict.fromkeys(KINDS, 0)  # no folder yet
    digests = {store.put("originals", bytes([i])) for i in range(5)}
    assert len(digests) == 5
    store.put("thumbnails", b"t")
    folder = store.path("originals", next(iter(digests))).parent
    (folder / ".partial-crashed").write_bytes(b"half")  # what a crash mid-write would leave
    assert store.count("originals") == 5
    assert store.count("thumbnails") == 1
    assert store.count("staging") == 0
