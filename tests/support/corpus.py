"""A labelled corpus of real images shipped by registry packages, for evaluations the models never saw.

`corpus_data/*.yaml` (one file per package; `corpus_data/README.md` gives the sources, licences and labelling
rules) names every image by package member and SHA-256 and labels it by hand: `headline` (names a person would
accept as the first label), `also` (correct anywhere in the top 3), `subject`, `kind`, `people`/`faces`
(0, 1, 2 or MANY = "3 or more"), `safe` and, for some, COCO boxes drawn by hand.

`ensure_corpus` downloads each package once (`apt-get download` + `dpkg-deb`, or `pip download` for wheels)
into `$FEEDLENS_CORPUS_CACHE` (default `~/.cache/feedlens/corpus`) and keeps only the listed files; Tux Paint
stamps come from `tests.support.tuxpaint`'s own cache. A package's pinned version is fetched when the mirror
still has it (its .deb/.whl SHA-256 checked), else the current one; `load_corpus` then skips, with one counted
`CorpusWarning`, the files whose hash changed. `composites` pastes Tux Paint cut-outs of COCO classes onto
object-free corpus photos: the alpha channel gives exact boxes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from tests.support import tuxpaint

DATA_DIR = Path(__file__).with_name("corpus_data")
CACHE_ENV = "FEEDLENS_CORPUS_CACHE"
MANY = 3  # `people`/`faces` value meaning "3 or more" ("3+" in the YAML)
KINDS = ("photo", "art", "clipart", "screenshot", "document", "chart", "microscopy", "render")
SUBJECTS = ("animals", "food & drink", "music", "sports", "vehicles", "plants & flowers", "buildings",
            "technology", "people", "landscape", "other")  # fmt: skip
ORIGINS = ("debian", "pypi", "tuxpaint")
COCO_CLASSES = frozenset(  # the 80 COCO detection class names (one string keeps it short)
    "person|bicycle|car|motorcycle|airplane|bus|train|truck|boat|traffic light|fire hydrant|"  # noqa: SIM905
    "stop sign|parking meter|bench|bird|cat|dog|horse|sheep|cow|elephant|bear|zebra|giraffe|backpack|"
    "umbrella|handbag|tie|suitcase|frisbee|skis|snowboard|sports ball|kite|baseball bat|"
    "baseball glove|skateboard|surfboard|tennis racket|bottle|wine glass|cup|fork|knife|spoon|bowl|"
    "banana|apple|sandwich|orange|broccoli|carrot|hot dog|pizza|donut|cake|chair|couch|potted plant|"
    "bed|dining table|toilet|tv|laptop|mouse|remote|keyboard|cell phone|microwave|oven|toaster|sink|"
    "refrigerator|book|clock|vase|scissors|teddy bear|hair drier|toothbrush".split("|")
)
_TUXPAINT_PREFIX = "usr/share/tuxpaint/stamps/"
_TIMEOUT_S = 900


class CorpusError(RuntimeError):
    """The corpus data or cache is inconsistent (a bad YAML entry, a pinned file whose hash changed)."""


class CorpusWarning(UserWarning):
    """Files were skipped because a package moved on from its pinned version."""


@dataclass(frozen=True)
class Box:
    """A COCO-class object; coordinates are fractions of the width/height: 0 <= x0 < x1 <= 1, same for y."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    difficult: bool = False
    method: str = "hand"  # "hand" (read off a grid by a person) or "composite" (exact, from alpha)


@dataclass(frozen=True)
class Entry:
    """One labelled image as the YAML states it (no file needed)."""

    id: str
    source: str
    member: str
    sha256: str
    licence: str
    kind: str
    subject: str
    headline: tuple[str, ...]
    also: tuple[str, ...]
    people: int
    faces: int
    safe: bool
    boxes: tuple[Box, ...]
    notes: str


@dataclass(frozen=True)
class Source:
    name: str
    origin: str
    version: str
    filename: str
    sha256: str
    licence: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class CorpusImage(Entry):
    """A verified image on disk (`path`) with its labels."""

    path: Path


# --- the YAML -------------------------------------------------------------------------------------------


def _count(value: object, where: str) -> int:
    if value == "3+":
        return MANY
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MANY:
        return value
    raise CorpusError(f"{where}: count must be 0, 1, 2 or '3+', got {value!r}")


def parse_box(raw: Mapping[str, Any], where: str) -> Box:
    coords = raw.get("box")
    if (
        not isinstance(coords, list)
        or len(coords) != 4
        or not all(isinstance(v, (int, float)) for v in coords)
    ):
        raise CorpusError(f"{where}: box must be [x0, y0, x1, y1], got {coords!r}")
    x0, y0, x1, y1 = (float(v) for v in coords)
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise CorpusError(f"{where}: box {coords} is not normalised and ordered")
    label = str(raw.get("label"))
    if label not in COCO_CLASSES:
        raise CorpusError(f"{where}: {label!r} is not a COCO class")
    return Box(label, x0, y0, x1, y1, bool(raw.get("difficult", False)))


def parse_entry(raw: Mapping[str, Any], source: str) -> Entry:
    where = f"{source}: {raw.get('id')!r}"
    words = {key: tuple(str(v) for v in raw.get(key) or ()) for key in ("headline", "also")}
    if not words["headline"]:
        raise CorpusError(f"{where}: empty headline")
    if raw.get("kind") not in KINDS or raw.get("subject") not in SUBJECTS:
        raise CorpusError(f"{where}: unknown kind {raw.get('kind')!r} or subject {raw.get('subject')!r}")
    digest = str(raw.get("sha256", ""))
    if len(digest) != 64 or not str(raw.get("member", "")) or not str(raw.get("id", "")).strip():
        raise CorpusError(f"{where}: id, member and a 64-digit sha256 are required")
    boxes = tuple(parse_box(b, where) for b in raw.get("boxes") or ())
    return Entry(
        id=str(raw["id"]),
        source=source,
        member=str(raw["member"]),
        sha256=digest,
        licence=str(raw.get("licence", "")),
        kind=str(raw["kind"]),
        subject=str(raw["subject"]),
        headline=words["headline"],
        also=words["also"],
        people=_count(raw.get("people"), where),
        faces=_count(raw.get("faces"), where),
        safe=bool(raw.get("safe", False)),
        boxes=boxes,
        notes=str(raw.get("notes", "")),
    )


def read_sources(directory: Path = DATA_DIR) -> list[Source]:
    """Every `*.yaml` except `composites.yaml`, parsed and checked (ids unique across files)."""
    sources: list[Source] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "composites.yaml":
            continue
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = str(raw.get("source"))
        if raw.get("origin") not in ORIGINS or path.stem != name:
            raise CorpusError(
                f"{path.name}: origin not in {ORIGINS}, or the file is not named after its source"
            )
        entries = tuple(parse_entry(item, name) for item in raw.get("images") or ())
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids) or seen & set(ids):
            raise CorpusError(f"{path.name}: duplicate image ids")
        seen |= set(ids)
        pins = [str(raw.get(key, "")) for key in ("version", "filename", "sha256", "licence")]
        sources.append(Source(name, str(raw["origin"]), pins[0], pins[1], pins[2], pins[3], entries))
    return sources


# --- Qt resource files (GCompris keeps its images in .rcc bundles) --------------------------------------


def read_rcc(blob: bytes) -> dict[str, bytes]:
    """Every file in a Qt .rcc bundle by its path ("/gcompris/src/..."). Format version 1-3; zlib entries
    (flag 1) are inflated, zstd ones (flag 4) raise, directories (flag 2) are walked."""
    if blob[:4] != b"qres":
        raise CorpusError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">4I", blob[4:20])
    node_size = 22 if version >= 2 else 14
    files: dict[str, bytes] = {}

    def name_at(offset: int) -> str:
        length = struct.unpack(">H", blob[names + offset : names + offset + 2])[0]
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        node = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[node : node + 6])
        path = f"{prefix}/{name_at(name_offset)}" if index else ""
        if flags & 2:
            count, first = struct.unpack(">II", blob[node + 6 : node + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        start = data + struct.unpack(">I", blob[node + 10 : node + 14])[0]
        size = struct.unpack(">I", blob[start : start + 4])[0]
        payload = blob[start + 4 : start + 4 + size]
        if flags & 4:
            raise CorpusError(f"{path}: zstd-compressed resource entries are not supported")
        files[path] = zlib.decompress(payload[4:]) if flags & 1 else payload  # qCompress: 4-byte length first

    walk(0, "")
    return files


# --- the cache ------------------------------------------------------------------------------------------


def default_cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "feedlens" / "corpus")


def cached_path(cache: Path, source: str, member: str) -> Path:
    """Where `member` of `source` lives in the cache; "a.rcc:/x/y.webp" becomes "a.rcc.d/x/y.webp"."""
    return cache / source / "files" / member.replace(":/", ".d/")


def cached_version(cache: Path, source: str) -> str | None:
    """The package version a complete cache holds (its VERSION file is written last), else None."""
    marker = cache / source / "VERSION"
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None


def _run(cmd: Sequence[str], cwd: Path) -> str:
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, capture_output=True, text=True, check=False, timeout=_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CorpusError(f"`{' '.join(cmd)}` could not run: {exc}") from exc
    if done.returncode != 0:
        hint = " (run `apt-get update` first if apt knows no such package)" if cmd[0] == "apt-get" else ""
        detail = done.stderr.strip()[-1500:]
        raise CorpusError(f"`{' '.join(cmd)}` failed ({done.returncode}){hint}: {detail}")
    return done.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(source: Source, work: Path) -> tuple[Path, str]:
    """Download the pinned version (hash-checked), or the current one if the pin is gone: (file, version)."""
    if source.origin == "debian":
        commands = [
            ["apt-get", "download", f"{source.name}={source.version}"],
            ["apt-get", "download", source.name],
        ]
        pattern = f"{source.name}_*.deb"
    else:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(work)]
        commands = [[*pip, f"{source.name}=={source.version}"], [*pip, source.name]]
        pattern = "*.whl"
    try:
        _run(commands[0], work)
    except CorpusError:  # the pin is gone from the mirror: take what it has now
        _run(commands[1], work)
    found = sorted(work.glob(pattern))
    if len(found) != 1:
        raise CorpusError(f"downloading {source.name} left {len(found)} files matching {pattern}")
    if source.origin == "debian":
        version = _run(["dpkg-deb", "-f", str(found[0]), "Version"], work).strip()
    else:
        version = found[0].name.split("-")[1]
    pinned = version == source.version and (source.origin == "debian" or found[0].name == source.filename)
    # apt writes an epoch as "%3a" in the file name, so only a wheel's name is compared
    if pinned and source.sha256 and _sha256(found[0]) != source.sha256:
        raise CorpusError(f"{found[0].name}: SHA-256 differs from the pinned {source.sha256}")
    return found[0], version


def _package_files(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    """The wanted paths (no leading "./") out of a .deb's data tarball or a wheel's zip."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return {name: wheel.read(name) for name in wheel.namelist() if name in wanted}
    found: dict[str, bytes] = {}
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:  # streamed: nothing else touches the disk
            for member in tar:
                name = member.name.removeprefix("./")
                handle = tar.extractfile(member) if name in wanted and member.isfile() else None
                if handle is not None:
                    found[name] = handle.read()
    if proc.returncode != 0:
        raise CorpusError(f"dpkg-deb could not read {archive.name}")
    return found


def _fill(cache: Path, source: Source) -> None:
    """Download one package and keep its listed members (files inside .rcc bundles included)."""
    target = cache / source.name
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        archive, version = _fetch(source, Path(tmp))
        containers = {e.member.split(":/")[0] for e in source.entries}
        files = _package_files(archive, containers)
        if target.exists():  # left by an attempt that died before writing VERSION
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for entry in source.entries:
            outer, _, inner = entry.member.partition(":/")
            blob = files.get(outer)
            if blob is not None and inner:
                blob = read_rcc(blob).get("/" + inner)
            if blob is None:
                continue  # gone from this version: load_corpus reports it
            path = cached_path(cache, source.name, entry.member)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
        (target / "VERSION").write_text(version + "\n", encoding="utf-8")


def ensure_corpus(cache: Path | None = None, sources: Sequence[str] | None = None) -> Path:
    """The cache folder, after downloading whatever package is missing from it (one lock for all callers).

    Tux Paint stamps are fetched through `tuxpaint.ensure_stamps` instead (its own cache)."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in read_sources() if sources is None or s.name in sources]
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for source in chosen:
            if source.origin == "tuxpaint":
                tuxpaint.ensure_stamps()
            elif cached_version(cache, source.name) is None:
                _fill(cache, source)
    return cache


# --- loading --------------------------------------------------------------------------------------------


def _locate(cache: Path, source: Source) -> list[tuple[Entry, Path, str, str]]:
    """(entry, file, version the file came from, pinned version) for every entry of `source`."""
    if source.origin == "tuxpaint":
        root = tuxpaint.ensure_stamps()
        version = tuxpaint.package_version(root)
        return [
            (e, root / e.member.removeprefix(_TUXPAINT_PREFIX), version, source.version)
            for e in source.entries
        ]
    version = cached_version(cache, source.name) or ""
    return [(e, cached_path(cache, source.name, e.member), version, source.version) for e in source.entries]


def verify(
    entries: Iterable[tuple[Entry, Path, str, str]],
) -> tuple[list[tuple[Entry, Path]], dict[str, int]]:
    """(entry, path, cached version, pinned version) -> the entries whose file matches its SHA-256, and the
    count skipped per source. A mismatch at the pinned version is corruption and raises."""
    kept: list[tuple[Entry, Path]] = []
    skipped: dict[str, int] = {}
    for entry, path, version, pinned in entries:
        if path.is_file() and _sha256(path) == entry.sha256:
            kept.append((entry, path))
        elif version == pinned:
            raise CorpusError(f"{entry.id}: {path} is missing or changed at the pinned version {pinned}")
        else:
            skipped[entry.source] = skipped.get(entry.source, 0) + 1
    return kept, skipped


def load_corpus(sources: Sequence[str] | None = None, cache: Path | None = None) -> list[CorpusImage]:
    """The labelled images (of `sources`, or all), each verified by SHA-256, sorted by id."""
    cache = ensure_corpus(cache, sources)
    chosen = [s for s in read_sources() if sources is None or s.name in sources]
    kept, skipped = verify(item for source in chosen for item in _locate(cache, source))
    if skipped:
        detail = ", ".join(f"{name}: {n}" for name, n in sorted(skipped.items()))
        message = (
            f"corpus: skipped {sum(skipped.values())} files changed in a newer package version ({detail})"
        )
        warnings.warn(message, CorpusWarning, stacklevel=2)
    images = [CorpusImage(**{f.name: getattr(e, f.name) for f in fields(Entry)}, path=p) for e, p in kept]
    return sorted(images, key=lambda image: image.id)


def corpus_or_skip(sources: Sequence[str] | None = None) -> list[CorpusImage]:
    """`load_corpus` for a test: a skip (a failure on CI) when the packages cannot be fetched here."""
    import pytest  # only tests call this

    try:
        return load_corpus(sources)
    except CorpusError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"corpus unavailable: {exc}")
        pytest.skip(f"corpus unavailable: {exc}")


# --- composites with exact boxes ------------------------------------------------------------------------

ALPHA_MIN = 128  # a pixel at least half opaque belongs to the object's box
MAX_UPSCALE = 2.5  # small stamps stay small rather than turn to mush
MAX_SHARED = 0.25  # no pasted object may hide more than this fraction of another's box


def _shared(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller


def _cover(background: Image.Image, size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A random crop of `background` with the aspect of `size`, resized to `size` (RGBA)."""
    width, height = background.size
    crop_w = min(width, round(height * size[0] / size[1]))
    crop_h = min(height, round(crop_w * size[1] / size[0]))
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    region = background.convert("RGB").crop((left, top, left + crop_w, top + crop_h))
    return region.resize(size, Image.Resampling.LANCZOS).convert("RGBA")


def compose(
    background: Image.Image,
    cutouts: Sequence[tuple[str, Image.Image]],
    rng: random.Random,
    size: tuple[int, int] = (640, 480),
) -> tuple[Image.Image, tuple[Box, ...]]:
    """`cutouts` (label, RGBA image) pasted onto a crop of `background`: an RGB image of `size` and one box
    per pasted object, from its alpha channel after scaling. An object that finds no place overlapping the
    earlier ones by at most MAX_SHARED in 30 tries is left out."""
    canvas = _cover(background, size, rng)
    placed: list[tuple[int, int, int, int]] = []
    boxes: list[Box] = []
    for label, cutout in cutouts:
        rgba = cutout.convert("RGBA")
        for _ in range(30):
            scale = min(rng.uniform(0.2, 0.6) * min(size) / max(rgba.size), MAX_UPSCALE)
            dims = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
            scaled = rgba.resize(dims, Image.Resampling.LANCZOS)
            bbox = scaled.getchannel("A").point(lambda v: 255 if v >= ALPHA_MIN else 0).getbbox()
            if bbox is None or scaled.width > size[0] or scaled.height > size[1]:
                continue
            x, y = rng.randint(0, size[0] - scaled.width), rng.randint(0, size[1] - scaled.height)
            box = (x + bbox[0], y + bbox[1], x + bbox[2], y + bbox[3])
            if all(_shared(box, other) <= MAX_SHARED for other in placed):
                canvas.alpha_composite(scaled, (x, y))
                placed.append(box)
                x0, y0, x1, y1 = box[0] / size[0], box[1] / size[1], box[2] / size[0], box[3] / size[1]
                boxes.append(Box(label, x0, y0, x1, y1, method="composite"))
                break
    return canvas.convert("RGB"), tuple(boxes)


def read_composite_spec(path: Path = DATA_DIR / "composites.yaml") -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    for cut in spec["cutouts"]:
        if cut["label"] not in COCO_CLASSES:
            raise CorpusError(f"composites.yaml: {cut['label']!r} is not a COCO class")
    return spec


def composites(n: int, seed: int, cache: Path | None = None) -> list[tuple[Image.Image, tuple[Box, ...]]]:
    """`n` composites, the same for the same seed and files: 1-3 Tux Paint cut-outs of COCO classes on a crop
    of an object-free corpus photo (listed in composites.yaml, hash-checked like the rest)."""
    spec = read_composite_spec()
    wanted = set(spec["backgrounds"])
    names = sorted({s.name for s in read_sources() for e in s.entries if e.id in wanted})
    backgrounds = [image.path for image in load_corpus(names, cache) if image.id in wanted]
    root = tuxpaint.ensure_stamps()
    listed = [(str(c["label"]), root / str(c["member"]).removeprefix(_TUXPAINT_PREFIX), c["sha256"])
              for c in spec["cutouts"]]  # fmt: skip
    cutouts = [(label, path) for label, path, digest in listed if path.is_file() and _sha256(path) == digest]
    if len(cutouts) < len(listed):
        message = f"composites: skipped {len(listed) - len(cutouts)} cut-outs whose SHA-256 changed"
        warnings.warn(message, CorpusWarning, stacklevel=2)
    if not backgrounds or not cutouts:
        raise CorpusError("composites: no verified backgrounds or cut-outs")
    made: list[tuple[Image.Image, tuple[Box, ...]]] = []
    for index in range(n):
        rng = random.Random(f"{seed}:{index}")
        chosen = [rng.choice(cutouts) for _ in range(rng.randint(1, 3))]
        with Image.open(rng.choice(backgrounds)) as background:
            background.draft("RGB", (1280, 960))  # JPEG: decode at reduced size, the crop is only 640x480
            pieces = []
            for label, path in chosen:
                with Image.open(path) as stamp:
                    pieces.append((label, stamp.convert("RGBA")))
            made.append(compose(background, pieces, rng, (int(spec["size"][0]), int(spec["size"][1]))))
    return made
