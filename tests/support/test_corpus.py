"""The corpus loader: its logic on small made-up inputs, the shipped YAML, and (slow) the real corpus."""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support import corpus
from tests.support.corpus import Box, CorpusError, CorpusWarning, Entry, Source

# --- helpers --------------------------------------------------------------------------------------------


def make_rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A version-2 Qt resource bundle holding `files` ({"dir/name": (content, zlib?)}), root first, each
    directory's children in consecutive nodes (what rcc writes)."""
    tree: dict[str, Any] = {}
    for path, value in files.items():
        *dirs, leaf = path.split("/")
        node = tree
        for part in dirs:
            node = node.setdefault(part, {})
        node[leaf] = value
    names, data, nodes = bytearray(), bytearray(), [b""]

    def name_offset(name: str) -> int:
        offset = len(names)
        names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return offset

    def emit(node: dict[str, Any], index: int, name: str) -> None:
        first = len(nodes)
        nodes.extend([b""] * len(node))
        for position, (child, value) in enumerate(sorted(node.items())):
            if isinstance(value, dict):
                emit(value, first + position, child)
                continue
            content, packed = value
            blob = struct.pack(">I", len(content)) + zlib.compress(content) if packed else content
            nodes[first + position] = struct.pack(">IHHHI", name_offset(child), int(packed), 0, 0, len(data))
            nodes[first + position] += b"\0" * 8
            data.extend(struct.pack(">I", len(blob)) + blob)
        offset = name_offset(name) if index else 0
        nodes[index] = struct.pack(">IHII", offset, 2, len(node), first) + b"\0" * 8

    emit(tree, 0, "")
    tree_blob = b"".join(nodes)
    header = 20
    return (
        b"qres"
        + struct.pack(">4I", 2, header, header + len(tree_blob), header + len(tree_blob) + len(data))
        + tree_blob
        + bytes(data)
        + bytes(names)
    )


def entry(member: str, content: bytes, source: str = "pkg", ident: str = "pkg/a") -> Entry:
    return Entry(ident, source, member, hashlib.sha256(content).hexdigest(), "CC0-1.0", "photo", "other",
                 ("thing",), (), 0, 0, True, (), "")  # fmt: skip


def raw_entry(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "id": "x/a", "member": "usr/a.png", "sha256": "0" * 64, "kind": "photo", "subject": "animals",
        "headline": ["cat"], "also": ["pet"], "people": 0, "faces": "3+", "safe": True,
        "boxes": [{"label": "cat", "box": [0.1, 0.2, 0.5, 0.9]}],
    }  # fmt: skip
    raw.update(changes)
    return raw


# --- the YAML -------------------------------------------------------------------------------------------


def test_parse_entry_reads_counts_boxes_and_words() -> None:
    parsed = corpus.parse_entry(raw_entry(), "x")
    assert parsed.headline == ("cat",) and parsed.also == ("pet",)
    assert (parsed.people, parsed.faces) == (0, corpus.MANY)
    assert parsed.boxes == (Box("cat", 0.1, 0.2, 0.5, 0.9),)


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "selfie"},
        {"subject": "art"},
        {"headline": []},
        {"people": 3},
        {"faces": -1},
        {"sha256": "abc"},
        {"boxes": [{"label": "cat", "box": [0.5, 0.2, 0.1, 0.9]}]},
        {"boxes": [{"label": "cat", "box": [0.1, 0.2, 0.5, 1.2]}]},
        {"boxes": [{"label": "kitten", "box": [0.1, 0.2, 0.5, 0.9]}]},
    ],
)
def test_parse_entry_rejects_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(CorpusError):
        corpus.parse_entry(raw_entry(**changes), "x")


def test_coco_names_are_the_80_classes() -> None:
    assert len(corpus.COCO_CLASSES) == 80
    assert {"person", "traffic light", "sports ball", "teddy bear", "hair drier"} <= corpus.COCO_CLASSES


def test_shipped_yaml_meets_the_corpus_targets() -> None:
    sources = corpus.read_sources()
    entries = [e for s in sources for e in s.entries]
    photos = [e for e in entries if e.kind == "photo"]
    assert len(photos) >= 250
    assert sum(1 for s in sources if sum(e.kind == "photo" for e in s.entries) >= 19) >= 4
    assert sum(e.safe for e in entries) >= 300
    assert set(Counter(e.kind for e in entries)) == set(corpus.KINDS)
    per_subject = Counter(e.subject for e in photos)
    assert min(per_subject[s] for s in corpus.SUBJECTS) >= 10  # sports is the thinnest (README)
    assert sum(len(e.boxes) for e in entries) >= 120
    for e in entries:  # everyday words: no WordNet ids, no file-name fragments
        assert all(
            w == w.lower().strip() and "_" not in w and not w[1:].isdigit() for w in e.headline + e.also
        )
    for s in sources:
        assert s.version and (s.origin == "tuxpaint" or len(s.sha256) == 64)


def test_composite_spec_names_object_free_backgrounds_and_coco_cutouts() -> None:
    spec = corpus.read_composite_spec()
    by_id = {e.id: e for s in corpus.read_sources() for e in s.entries}
    for ident in spec["backgrounds"]:
        assert by_id[ident].kind == "photo" and not by_id[ident].boxes and by_id[ident].people == 0
    assert len({c["label"] for c in spec["cutouts"]}) >= 20
    assert all(len(c["sha256"]) == 64 for c in spec["cutouts"])


# --- .rcc bundles, the cache, verification --------------------------------------------------------------


def test_read_rcc_returns_plain_and_zlib_files_by_path() -> None:
    blob = make_rcc({"g/src/a.webp": (b"plain bytes", False), "g/src/deep/b.png": (b"packed" * 50, True)})
    assert corpus.read_rcc(blob) == {"/g/src/a.webp": b"plain bytes", "/g/src/deep/b.png": b"packed" * 50}


def test_read_rcc_rejects_other_files_and_zstd() -> None:
    with pytest.raises(CorpusError):
        corpus.read_rcc(b"PK\x03\x04 not a bundle")
    blob = bytearray(make_rcc({"a": (b"x", False)}))
    tree = struct.unpack(">I", blob[8:12])[0]
    struct.pack_into(">H", blob, tree + 22 + 4, 4)  # the file node's flags: zstd
    with pytest.raises(CorpusError, match="zstd"):
        corpus.read_rcc(bytes(blob))


def test_cached_path_maps_bundle_members_to_folders(tmp_path: Path) -> None:
    member = "usr/share/x/rcc/erase.rcc:/gcompris/src/a.webp"
    path = corpus.cached_path(tmp_path, "pkg", member)
    assert path == tmp_path / "pkg" / "files" / "usr/share/x/rcc/erase.rcc.d/gcompris/src/a.webp"


def test_verify_skips_changed_files_only_when_the_version_moved(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    good.write_bytes(b"good")
    bad.write_bytes(b"changed")
    items = [(entry("a", b"good", ident="a"), good, "2", "1"), (entry("b", b"bad", ident="b"), bad, "2", "1")]
    kept, skipped = corpus.verify(items)
    assert [e.id for e, _ in kept] == ["a"] and skipped == {"pkg": 1}
    with pytest.raises(CorpusError, match="pinned"):
        corpus.verify([(entry("b", b"bad"), bad, "1", "1")])
    with pytest.raises(CorpusError):  # a missing file at the pinned version is corruption too
        corpus.verify([(entry("c", b"c"), tmp_path / "missing.png", "1", "1")])


def _fake_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, content in files.items():
            wheel.writestr(name, content)
    return path


def test_fill_keeps_listed_members_and_bundle_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_rcc({"g/x.webp": (b"inside", True)})
    wheel = _fake_wheel(
        tmp_path / "pkg-2.0-py3-none-any.whl", {"pkg/a.jpg": b"a", "pkg/b.rcc": bundle, "z": b""}
    )
    entries = (entry("pkg/a.jpg", b"a", ident="a"), entry("pkg/b.rcc:/g/x.webp", b"inside", ident="b"),
               entry("pkg/gone.png", b"gone", ident="c"))  # fmt: skip
    source = Source("pkg", "pypi", "1.0", "pkg-1.0-py3-none-any.whl", "", "MIT", entries)
    monkeypatch.setattr(corpus, "_fetch", lambda source, work: (wheel, "2.0"))
    cache = tmp_path / "cache"
    cache.mkdir()
    corpus._fill(cache, source)
    assert corpus.cached_version(cache, "pkg") == "2.0"
    assert corpus.cached_path(cache, "pkg", "pkg/a.jpg").read_bytes() == b"a"
    assert corpus.cached_path(cache, "pkg", "pkg/b.rcc:/g/x.webp").read_bytes() == b"inside"
    assert not corpus.cached_path(cache, "pkg", "pkg/gone.png").exists()
    assert not (cache / "pkg" / "files" / "z").exists()


def test_fetch_falls_back_to_the_current_version_when_the_pin_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], cwd: Path) -> str:
        calls.append(cmd)
        if cmd[-1] == "pkg==1.0":
            raise CorpusError("no such version")
        _fake_wheel(cwd / "pkg-2.0-py3-none-any.whl", {"a": b"a"})
        return ""

    monkeypatch.setattr(corpus, "_run", fake_run)
    source = Source("pkg", "pypi", "1.0", "pkg-1.0-py3-none-any.whl", "0" * 64, "MIT", ())
    archive, version = corpus._fetch(source, tmp_path)
    assert (archive.name, version) == ("pkg-2.0-py3-none-any.whl", "2.0")
    assert [c[-1] for c in calls] == ["pkg==1.0", "pkg"]


def test_fetch_rejects_a_pinned_file_with_another_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        corpus, "_run", lambda cmd, cwd: _fake_wheel(cwd / "pkg-1.0-py3-none-any.whl", {}).name
    )
    source = Source("pkg", "pypi", "1.0", "pkg-1.0-py3-none-any.whl", "0" * 64, "MIT", ())
    with pytest.raises(CorpusError, match="SHA-256"):
        corpus._fetch(source, tmp_path)


def test_load_corpus_counts_skipped_files_in_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = (entry("a.png", b"same", ident="pkg/a"), entry("b.png", b"old", ident="pkg/b"))
    source = Source("pkg", "debian", "1", "pkg_1_all.deb", "", "GPL-2", entries)
    for member, content in (("a.png", b"same"), ("b.png", b"new")):
        path = corpus.cached_path(tmp_path, "pkg", member)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (tmp_path / "pkg" / "VERSION").write_text("2\n", encoding="utf-8")
    monkeypatch.setattr(corpus, "read_sources", lambda: [source])
    monkeypatch.setattr(corpus, "ensure_corpus", lambda cache, sources: cache)
    with pytest.warns(CorpusWarning, match="skipped 1 files"):
        images = corpus.load_corpus(cache=tmp_path)
    assert [i.id for i in images] == ["pkg/a"] and images[0].path.read_bytes() == b"same"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is Debian's")
def test_package_files_streams_members_out_of_a_deb(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n",
        encoding="utf-8",
    )
    (root / "usr" / "share").mkdir(parents=True)
    (root / "usr" / "share" / "a.png").write_bytes(b"A")
    (root / "usr" / "share" / "b.png").write_bytes(b"B")
    deb = tmp_path / "fake.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True
    )
    assert corpus._package_files(deb, {"usr/share/a.png", "usr/missing"}) == {"usr/share/a.png": b"A"}


# --- composites -----------------------------------------------------------------------------------------


def _cutout(width: int, height: int, margin: int) -> Image.Image:
    """A transparent RGBA tile with an opaque red rectangle `margin` px inside its border."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (margin, margin, width - margin, height - margin))
    return image


def test_compose_boxes_match_the_pasted_pixels() -> None:
    background = Image.new("RGB", (900, 700), (0, 90, 0))
    image, boxes = corpus.compose(background, [("cup", _cutout(120, 80, 10))], random.Random(3), (320, 240))
    assert image.size == (320, 240) and len(boxes) == 1 and boxes[0].method == "composite"
    pixels = np.asarray(image).astype(int)
    red = np.argwhere((pixels[..., 0] > 128) & (pixels[..., 1] < 60))  # (row, col) of the pasted rectangle
    box = boxes[0]
    assert abs(red[:, 1].min() - box.x0 * 320) <= 1 and abs(red[:, 1].max() + 1 - box.x1 * 320) <= 1
    assert abs(red[:, 0].min() - box.y0 * 240) <= 1 and abs(red[:, 0].max() + 1 - box.y1 * 240) <= 1


def test_compose_is_deterministic_and_keeps_objects_apart() -> None:
    background = Image.new("RGB", (640, 480), (200, 200, 255))
    pieces = [("dog", _cutout(100, 100, 5)), ("cat", _cutout(90, 60, 0)), ("bird", _cutout(40, 70, 3))]
    first = corpus.compose(background, pieces, random.Random(7))
    second = corpus.compose(background, pieces, random.Random(7))
    assert first[1] == second[1] and first[0].tobytes() == second[0].tobytes()
    placed = [(round(b.x0 * 640), round(b.y0 * 480), round(b.x1 * 640), round(b.y1 * 480)) for b in first[1]]
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            assert corpus._shared(a, b) <= corpus.MAX_SHARED + 0.02  # rounding of the fractions


# --- the real corpus ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_corpus_loads_verified_and_composites_are_exact() -> None:
    images = corpus.corpus_or_skip()
    assert len(images) == sum(len(s.entries) for s in corpus.read_sources())
    for image in images:
        with Image.open(image.path) as opened:
            opened.draft("RGB", (256, 256))
            assert min(opened.size) >= 32, image.id
    made = corpus.composites(20, seed=0)
    boxes = [b for _, bs in made for b in bs]
    assert len(made) == 20 and len(boxes) >= 20
    assert all(0 <= b.x0 < b.x1 <= 1 and 0 <= b.y0 < b.y1 <= 1 for b in boxes)
    assert corpus.composites(2, seed=0)[1][1] == made[1][1]
