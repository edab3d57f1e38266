"""The Tux Paint stamp loader: pure checks of its logic, and of the real stamps where they are present."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import tuxpaint
from tests.support.tuxpaint import CATEGORIES, FOLDER_CATEGORIES, Stamp

MIN_PER_CATEGORY = 4  # photos only; technology (4) and people (5) are the thinnest in 2022.06.04
_TRANSLATION_LINE = re.compile(r"^[A-Za-z_@]+\.utf8=")


# --- no stamps needed -----------------------------------------------------------------------------------


def test_longest_whole_component_prefix_wins() -> None:
    mapping = {"a": "A", "a/b": "B", "a/b/c": None, "a/bc": "C", "a/b/file": "F"}
    assert tuxpaint.category_for("a/x/stamp", mapping) == "A"
    assert tuxpaint.category_for("a/b/stamp", mapping) == "B"
    assert tuxpaint.category_for("a/b/c/d/stamp", mapping) is None
    assert tuxpaint.match_prefix("a/b/c/d/stamp", mapping) == "a/b/c"
    assert tuxpaint.category_for("a/bc/stamp", mapping) == "C"
    assert tuxpaint.category_for("a/bcd/stamp", mapping) == "A"  # "a/bc" is not a component prefix
    assert tuxpaint.category_for("a/b/file", mapping) == "F"
    assert tuxpaint.category_for("a/b/file2", mapping) == "B"
    assert tuxpaint.match_prefix("z/stamp", mapping) is None
    assert tuxpaint.category_for("z/stamp", mapping) is None


def test_mapping_names_only_feedlens_categories() -> None:
    assert len(set(CATEGORIES)) == 12
    unknown = {value for value in FOLDER_CATEGORIES.values() if value is not None} - set(CATEGORIES)
    assert not unknown
    assert all(key == key.strip("/") and "." not in key for key in FOLDER_CATEGORIES)


def _fake(category: str, index: int) -> Stamp:
    return Stamp(Path(f"/x/{category}/{index}.png"), category, "", category, f"s{index}", cartoon=False)


def test_split_is_deterministic_disjoint_and_stratified() -> None:
    sizes = {"animals & pets": 40, "vehicles": 7, "technology": 2, "people & selfies": 1}
    stamps = [_fake(category, i) for category, n in sizes.items() for i in range(n)]
    dev, test = tuxpaint.split(stamps, test_fraction=0.5, seed="s")
    assert tuxpaint.split(list(reversed(stamps)), test_fraction=0.5, seed="s") == (dev, test)
    assert {s.key for s in dev}.isdisjoint({s.key for s in test})
    assert len(dev) + len(test) == len(stamps)
    test_counts = tuxpaint.category_counts(test)
    assert test_counts["animals & pets"] == 20
    assert test_counts["vehicles"] in (3, 4)
    assert test_counts["technology"] == 1  # at least one on each side
    assert tuxpaint.category_counts(dev)["technology"] == 1
    other_dev, _ = tuxpaint.split(stamps, test_fraction=0.5, seed="other")
    assert other_dev != dev
    assert len(tuxpaint.split(stamps, test_fraction=0.25, seed="s")[1]) < len(test)
    with pytest.raises(ValueError, match="test_fraction"):
        tuxpaint.split(stamps, test_fraction=1.0)


def test_render_flattens_transparency_and_keeps_aspect(tmp_path: Path) -> None:
    cutout = Image.new("RGBA", (40, 80), (0, 0, 0, 0))
    cutout.paste((200, 0, 0, 255), (10, 10, 30, 70))
    path = tmp_path / "red.png"
    cutout.save(path)
    image = tuxpaint.render(path, size=100, padding=0.1)
    assert image.mode == "RGB" and image.size == (100, 100)
    assert image.getpixel((50, 50)) == (200, 0, 0)
    assert image.getpixel((0, 0)) == image.getpixel((30, 50)) == (255, 255, 255)  # margin and cut-out area
    grey = tuxpaint.render(path, size=64, background=(128, 128, 128))
    assert grey.getpixel((1, 1)) == (128, 128, 128)
    decoded = Image.open(io.BytesIO(tuxpaint.to_jpeg_bytes(image, quality=80)))
    assert decoded.format == "JPEG" and decoded.size == (100, 100)


def test_failed_download_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no apt-get to be found
    with pytest.raises(RuntimeError, match="apt-get download tuxpaint-stamps-default"):
        tuxpaint.ensure_stamps(tmp_path / "cache", installed=tmp_path / "not-installed")
    assert tuxpaint.stamps_root(tmp_path / "cache", installed=tmp_path / "not-installed") is None


# --- the real stamps ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root() -> Path:
    found = tuxpaint.stamps_root()
    if found is None:
        pytest.skip(
            f"no Tux Paint stamps: install Debian's {tuxpaint.PACKAGE} or call tuxpaint.ensure_stamps() "
            f"(cache: ${tuxpaint.CACHE_ENV} or ~/.cache/feedlens/tuxpaint)"
        )
    return found


@pytest.fixture(scope="module")
def photos(root: Path) -> list[Stamp]:
    return tuxpaint.load_stamps(root)


def test_every_folder_is_mapped_and_every_key_exists(root: Path) -> None:
    folders = {png.relative_to(root).parent.as_posix() for png in root.rglob("*.png")}
    unmapped = sorted(f for f in folders if tuxpaint.match_prefix(f + "/x") is None)
    assert not unmapped, f"folders with no mapping entry (new package version?): {unmapped}"
    stale = [
        key
        for key in FOLDER_CATEGORIES
        if not ((root / key).is_dir() or (root / f"{key}.png").is_file() or (root / f"{key}.svg").is_file())
    ]
    assert not stale, f"mapping keys naming nothing in {root}: {stale}"


def test_every_category_has_enough_photos(root: Path, photos: list[Stamp]) -> None:
    counts = tuxpaint.category_counts(photos)
    with_cartoons = tuxpaint.category_counts(tuxpaint.load_stamps(root, include_cartoons=True))
    print(f"\nTux Paint {tuxpaint.package_version(root)} at {root}: photos / with cartoons")
    for category in CATEGORIES:
        print(f"  {category:28s} {counts[category]:4d} {with_cartoons[category]:4d}")
    thin = {c: counts[c] for c in CATEGORIES if counts[c] < MIN_PER_CATEGORY}
    assert not thin, f"categories under {MIN_PER_CATEGORY} photos: {thin}"
    assert all(with_cartoons[c] >= counts[c] for c in CATEGORIES)
    assert sum(with_cartoons.values()) > sum(counts.values())


def test_loader_skips_what_it_says(root: Path, photos: list[Stamp]) -> None:
    everything = tuxpaint.load_stamps(root, include_cartoons=True)
    assert not any(s.cartoon for s in photos)
    assert {s.key for s in photos} == {s.key for s in everything if not s.cartoon}
    keys = [s.key for s in everything]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert not any(s.name.endswith("_mirror") for s in everything)
    assert all(s.path.suffix == ".png" and tuxpaint.category_for(s.key) == s.category for s in everything)
    assert "people/fireman240a" in keys and "military/fireman240a" not in keys  # its byte-identical copy
    digests = {hashlib.sha1(s.path.read_bytes()).hexdigest() for s in everything}
    assert len(digests) == len(everything)
    for stamp in everything[::25]:
        with Image.open(stamp.path) as image:
            assert min(image.size) >= tuxpaint.MIN_SIDE


def test_descriptions_are_the_english_first_line(photos: list[Stamp]) -> None:
    assert all(s.description for s in photos), [s.key for s in photos if not s.description]
    for stamp in photos:
        first = stamp.path.with_suffix(".txt").read_text(encoding="utf-8").splitlines()[0].strip()
        assert stamp.description == first
        assert "=" not in stamp.description and not _TRANSLATION_LINE.match(stamp.description), stamp
    koala = next(s for s in photos if s.key == "animals/marsupials/koala")
    assert koala.description == "A koala." and koala.category == "animals & pets"


def test_real_split_is_stable_disjoint_and_stratified(root: Path, photos: list[Stamp]) -> None:
    dev, test = tuxpaint.split(photos)
    assert tuxpaint.split(tuxpaint.load_stamps(root)) == (dev, test)
    assert {s.key for s in dev}.isdisjoint({s.key for s in test})
    total, in_test = tuxpaint.category_counts(photos), tuxpaint.category_counts(test)
    for category, n in total.items():
        assert abs(in_test[category] - n / 2) <= 1, (category, n, in_test[category])
        assert 0 < in_test[category] < n


def test_real_stamps_render_to_rgb(photos: list[Stamp]) -> None:
    by_mode: dict[str, Stamp] = {}  # one stamp per source mode (RGBA, LA, P and RGB with a transparency key)
    for stamp in photos:
        with Image.open(stamp.path) as source:
            by_mode.setdefault(source.mode, stamp)
    assert {"RGBA", "LA", "P"} <= set(by_mode)
    for stamp in [*by_mode.values(), *photos[::25]]:
        image = tuxpaint.render(stamp, size=128)
        assert image.mode == "RGB" and image.size == (128, 128)
        assert image.getpixel((0, 0)) == (255, 255, 255), stamp.key  # the padding is background
        assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 2, stamp.key  # the stamp is drawn
