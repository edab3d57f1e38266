"""Labelled image domains for the cross-domain category benchmark (benchmarks/categories_quality.py).

Every image is labelled with one `subject` of the issue's eight categories (animals, food & drink, music,
sports, vehicles, plants & flowers, buildings, technology) or a distractor (people, landscape, other), and
belongs to one domain: a group of packages whose images were made alike.

- The labelled corpus (tests/support/corpus.py, 645 images from 16 packages, labelled by hand), grouped by
  package: `gcompris` (an educational game's photos and clip art), `opencv` (OpenCV's samples: photos,
  screenshots, charts), `gimp` (the GIMP manual: photos, filter results, screenshots), `clipart`
  (openclipart), `wallpapers` (KDE, MATE, Lomiri, UKUI and GNOME wallpapers and the Python wheels' sample
  photos). The corpus's own Tux Paint entries are left out here: they are in the next domain.
- `tuxpaint`: Tux Paint's stamps (tests/support/tuxpaint.py), mapped onto the eight categories by folder
  (`FOLDERS` below, the reason for each entry beside it), flattened onto white at 512 px; drawings included.
  At most `PER_CATEGORY` per category (the first by key order of a sha1 shuffle), so animals do not swamp it.

Analysis (the default pipeline, every analyzer) is cached per image under `--cache`, keyed by the pipeline's
versions: a rerun only reads the cache. What is cached is the stored form (results' `to_dict()` and the two
embedding vectors), exactly what a workspace keeps.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.support import tuxpaint
from tests.support.corpus import load_corpus

from feedlens.analyzers.registry import DEFAULT_ANALYZERS
from feedlens.config import Settings
from feedlens.core.results.base import AnalyzerResult
from feedlens.core.results.loading import load_results
from feedlens.services.factory import build_services

SUBJECTS = (
    "animals",
    "food & drink",
    "music",
    "sports",
    "vehicles",
    "plants & flowers",
    "buildings",
    "technology",
)
DISTRACTORS = ("people", "landscape", "other")
CORPUS_DOMAINS = {
    "gcompris-qt-data": "gcompris",
    "opencv-doc": "opencv",
    "gimp-help-en": "gimp",
    "openclipart-png": "clipart",
}  # every other package but Tux Paint: "wallpapers"
PER_CATEGORY = 30
SIZE = 512
# Tux Paint folder -> subject (None: left out); the longest whole-component prefix wins (match_prefix).
FOLDERS: dict[str, str | None] = {
    "animals": "animals",  # birds, fish, insects, mammals, marsupials, shellfish, photos and drawings
    "animals/mammals/bears/toys": None,  # a teddy bear is a toy
    "food": "food & drink",  # fruit, vegetables, nuts, spices, desserts, pizza
    "hobbies": "technology",  # binoculars and a 35 mm camera
    "hobbies/music": "music",  # guitars, violin, cello, drums, cymbal, trumpet, bassoon
    "symbols/music": "music",  # notes, clefs, sharps and flats: what a person files under music
    "sports": "sports",  # balls, a racket, goal posts, helmets, a trophy
    "vehicles": "vehicles",  # cars, trucks, buses, ships, planes, trains, a bicycle
    "vehicles/emergency/sedan_police": None,  # a strip of police emblems, not a car
    "military/vehicles": "vehicles",  # tanks, a fighter jet
    "plants": "plants & flowers",  # flowers, trees, mushrooms, garden plants
    "plants/flowers/plastic": None,  # an artificial flower
    "town/houses": "buildings",  # houses, a cathedral, castles, a windmill, a town hall (drawings)
    "town/monuments/cartoon/eiffel_tower": "buildings",
    "town/monuments/cartoon/pyramid": "buildings",
    "town/cartoon/watch_tower": "buildings",
    "town/cartoon/ruins": "buildings",
    "space/apollo_lander": "technology",  # spacecraft
    "space/voyager2": "technology",
}


@dataclass(frozen=True)
class Item:
    """One analysed, labelled image in stored form: `results` as a workspace loads them, the two vectors."""

    key: str
    domain: str
    source: str
    kind: str
    subject: str
    results: dict[str, AnalyzerResult]
    content: np.ndarray  # (384,) unit
    visual: np.ndarray  # (1280,) unit


@dataclass(frozen=True)
class _Todo:
    key: str
    domain: str
    source: str
    kind: str
    subject: str
    data: Path | bytes


def _stamps() -> list[_Todo]:
    root = tuxpaint.stamps_root()
    if root is None:
        root = tuxpaint.ensure_stamps()
    stamps = tuxpaint.load_stamps(root, include_cartoons=True, mapping=FOLDERS)
    by_subject: dict[str, list[tuxpaint.Stamp]] = {}
    for stamp in stamps:
        by_subject.setdefault(stamp.category, []).append(stamp)
    out = []
    for subject, members in sorted(by_subject.items()):
        members.sort(key=lambda s: hashlib.sha1(f"feedlens\0{s.key}".encode()).hexdigest())
        for stamp in members[:PER_CATEGORY]:
            data = tuxpaint.to_jpeg_bytes(tuxpaint.render(stamp, SIZE))
            kind = "clipart" if stamp.cartoon else "photo"
            out.append(_Todo(f"tuxpaint/{stamp.key}", "tuxpaint", "tuxpaint", kind, subject, data))
    return out


def _corpus() -> list[_Todo]:
    out = []
    for entry in load_corpus():
        if entry.source == "tuxpaint-stamps-default":
            continue
        domain = CORPUS_DOMAINS.get(entry.source, "wallpapers")
        out.append(_Todo(f"corpus/{entry.id}", domain, entry.source, entry.kind, entry.subject, entry.path))
    return out


def _cache_file(folder: Path, key: str) -> Path:
    return folder / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.npz"


def load_domains(settings: Settings, cache: Path, batch: int = 16, folder: Path | None = None) -> list[Item]:
    """Every labelled image of every domain, analysed (from the cache where it can be). `folder`: read an
    earlier run's cache as it is, whatever the analyzers' versions are now (nothing is analysed)."""
    todo = [*_corpus(), *_stamps()]
    missing: list[_Todo] = []
    if folder is None:
        pipeline = build_services(settings).pipeline(DEFAULT_ANALYZERS)
        versions = json.dumps(pipeline.versions(), sort_keys=True)
        folder = cache / f"category-domains-{hashlib.sha256(versions.encode()).hexdigest()[:12]}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "versions.json").write_text(versions)
        missing = [t for t in todo if not _cache_file(folder, t.key).exists()]
    started = time.perf_counter()
    for start in range(0, len(missing), batch):
        chunk = missing[start : start + batch]
        reports = pipeline.analyze_sources([t.key for t in chunk], [t.data for t in chunk])
        for item, report in zip(chunk, reports, strict=True):
            if not report.ok:
                print(f"skipped {item.key}: {report.error}", file=sys.stderr)
                continue
            stored = {n: r.to_dict() for n, r in report.results.items() if n != "embedding"}
            embedding: Any = report.results["embedding"]
            np.savez(
                _cache_file(folder, item.key),
                results=json.dumps(stored),
                content=embedding.content,
                visual=embedding.visual,
            )
        done = start + len(chunk)
        print(f"analysed {done}/{len(missing)} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    out = []
    for item in todo:
        path = _cache_file(folder, item.key)
        if not path.exists():
            continue
        with np.load(path, allow_pickle=False) as saved:
            results = load_results(json.loads(str(saved["results"])))
            content, visual = saved["content"].astype(np.float32), saved["visual"].astype(np.float32)
        out.append(
            Item(item.key, item.domain, item.source, item.kind, item.subject, results, content, visual)
        )
    return out


def describe(items: Sequence[Item]) -> dict[str, dict[str, int]]:
    """Domain -> subject -> images."""
    out: dict[str, dict[str, int]] = {}
    for item in items:
        out.setdefault(item.domain, {}).setdefault(item.subject, 0)
        out[item.domain][item.subject] += 1
    return out


if __name__ == "__main__":
    from feedlens.config import load_settings

    found = load_domains(load_settings(), Path.home() / ".cache" / "feedlens" / "bench")
    print(json.dumps(describe(found), indent=1))
