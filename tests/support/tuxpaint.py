"""Tux Paint's stamp images as a labelled image set for the category benchmark and a few tests.

The Debian package `tuxpaint-stamps-default` (GPL-2, Bill Kendrick and contributors) ships ~800 PNG stamps:
real objects, animals, food, vehicles..., mostly photographs cut out onto a transparent background, some
drawings. Every `x.png` has an `x.txt` whose first line is an English description ("A koala.") and whose
later lines are translations (`ach.utf8=...`); the benchmark uses the English line as the post's caption.

Where the images come from: `/usr/share/tuxpaint/stamps` when the package is installed, else an extracted
copy under `$FEEDLENS_TUXPAINT_CACHE` (default `~/.cache/feedlens/tuxpaint`) that `ensure_stamps` makes with
`apt-get download` + `dpkg-deb -x` (no root needed, but apt's package lists must be present). The cache holds
`stamps/` (sound files pruned), `VERSION` (the package version) and the package's `copyright`.

What `load_stamps` keeps: PNG only (the ~250 SVG stamps are skipped; rasterising them would need a SVG
library the project does not depend on), at least 32 px a side, not Tux Paint's pre-mirrored copies
(`x_mirror.png`, which have no description), one copy of byte-identical files, and only folders mapped to a
category below. Drawings (`Stamp.cartoon`) are skipped unless `include_cartoons`: a PNG is a drawing when it
lies under a `cartoon` folder (23 of them: animals/birds/cartoon, food/fruit/cartoon, town/houses/...) or
has an SVG of the same name beside it (Tux Paint's raster fallback for a vector stamp: the hats, the money
symbols, the speech balloons). Some drawings remain among the "photos" because their folder says nothing
(clothes/t_*, food/pizza, the letters, the Easter and Hanukkah stamps, people/body_parts/eye).

Social-media photos are not cut-outs: `render` flattens a stamp onto a plain background, so the benchmark
measures recognition of an isolated object on white, an easier and different task from a cluttered feed
photo. Report figures from this set as such.

Mapping (`FOLDER_CATEGORIES`, keys are paths relative to the stamps folder without extension; the longest
key that is a whole-component prefix of a stamp's path wins; None leaves the stamps out):

| key | category | why |
|---|---|---|
| animals | animals & pets | birds, fish, insects, mammals, marsupials, shellfish: photos of animals |
| animals/mammals/bears/toys, .../bears/cartoon | - | teddy bears are toys, not animals |
| clothes | fashion & beauty | hats, shirts, pants, gloves, a button |
| clothes/armor | - | a knight's helmet (drawing): costume, not fashion |
| clothes/clothespin_new, clothes/clothespin_old | home & interior | laundry pegs are household items |
| food | food & drink | fruit, vegetables, nuts, spices, pizza, desserts |
| hobbies | technology | binoculars and a 35 mm camera: optical gadgets |
| hobbies/music | art & design | guitars, violin, drums, trumpet: no music category; the nearest one |
| household | home & interior | dishes, kettle, toilet, bins, tools (DIY), light bulb, key |
| household/arttools | art & design | markers, highlighter, scissors: drawing and craft tools |
| household/electronics | technology | laptop, phones, printers: SVG only in 2022.06.04, so none yet |
| medical | - | bandage, thermometer, syringe: no health category |
| military | - | memorial, ammunition: no category |
| military/vehicles | vehicles | tanks, APCs, a fighter jet |
| military/paratrooper | people & selfies | a person under a parachute |
| military/fireman240a | - | a byte-identical copy of people/fireman240a |
| naturalforces | - | explosion, fire, lightning: semi-transparent effects, not a post subject |
| people | people & selfies | firemen, an eye; the mermaid drawing |
| people/toys | - | a rag doll |
| people/cartoon/snowman | - | a snowman is not a person |
| plants | travel & outdoors | flowers, trees, mushrooms, garden plants: nature |
| plants/flowers/plastic | - | an artificial flower: decor or nature, ambiguous |
| seasonal | events & celebrations | Christmas, Easter, Halloween, Hanukkah, New Year stamps |
| seasonal/christmas/{Christmas_pudding,Mince_Pie,Roast_turkey} | - | holiday dishes: food or event? |
| seasonal/halloween/grave-a ... grave-j | - | gravestone photos: a cemetery, not a celebration |
| space | - | planets and the sun: renderings, no category |
| space/moon | travel & outdoors | photos of the moon: night-sky posts |
| space/apollo_lander, space/voyager2 | technology | spacecraft |
| space/spacewalk | people & selfies | an astronaut |
| sports | sports & fitness | balls, racket, helmet, trophy, goal posts |
| symbols | - | chess pieces, math, money, music notation, shapes, clock, recycle sign: no category |
| symbols/alphabets | text & memes & screenshots | Latin letters (English, German, Spanish), filled |
| symbols/alphabets/asl | - | hand-sign drawings, not text |
| symbols/alphabets/{english,german,spanish}/outlined | - | outlines of the filled glyphs: near-duplicates |
| symbols/faces | text & memes & screenshots | emoji faces: the stuff of reaction memes |
| town | travel & outdoors | post boxes, monuments (inukshuk), buildings and landmarks (drawings) |
| town/flags | - | plain coloured flags: no category |
| town/roadsigns | - | traffic signs: half text, half street scene, ambiguous |
| vehicles | vehicles | cars, trucks, buses, ships, planes, a balloon, wheels |
| vehicles/emergency/sedan_police | - | a strip of police emblems, not a car |
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import math
import os
import shlex
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from PIL import Image

PACKAGE = "tuxpaint-stamps-default"
INSTALLED_ROOT = Path("/usr/share/tuxpaint/stamps")
CACHE_ENV = "FEEDLENS_TUXPAINT_CACHE"
MIN_SIDE = 32
_PRUNED_SUFFIXES = (".ogg", ".wav")  # ~200 MB of spoken descriptions and sound effects the loader never reads
_TIMEOUT_S = 900

PEOPLE = "people & selfies"
ANIMALS = "animals & pets"
FOOD = "food & drink"
OUTDOORS = "travel & outdoors"
FASHION = "fashion & beauty"
SPORTS = "sports & fitness"
VEHICLES = "vehicles"
HOME = "home & interior"
TECH = "technology"
ART = "art & design"
TEXT = "text & memes & screenshots"
EVENTS = "events & celebrations"
CATEGORIES: tuple[str, ...] = (
    PEOPLE,
    ANIMALS,
    FOOD,
    OUTDOORS,
    FASHION,
    SPORTS,
    VEHICLES,
    HOME,
    TECH,
    ART,
    TEXT,
    EVENTS,
)

# The table in the module docstring gives the reason for every entry.
FOLDER_CATEGORIES: Mapping[str, str | None] = MappingProxyType(
    {
        "animals": ANIMALS,
        "animals/mammals/bears/toys": None,
        "animals/mammals/bears/cartoon": None,
        "clothes": FASHION,
        "clothes/armor": None,
        "clothes/clothespin_new": HOME,
        "clothes/clothespin_old": HOME,
        "food": FOOD,
        "hobbies": TECH,
        "hobbies/music": ART,
        "household": HOME,
        "household/arttools": ART,
        "household/electronics": TECH,
        "medical": None,
        "military": None,
        "military/vehicles": VEHICLES,
        "military/paratrooper": PEOPLE,
        "military/fireman240a": None,
        "naturalforces": None,
        "people": PEOPLE,
        "people/toys": None,
        "people/cartoon/snowman": None,
        "plants": OUTDOORS,
        "plants/flowers/plastic": None,
        "seasonal": EVENTS,
        "seasonal/christmas/Christmas_pudding": None,
        "seasonal/christmas/Mince_Pie": None,
        "seasonal/christmas/Roast_turkey": None,
        **{f"seasonal/halloween/grave-{letter}": None for letter in "abcdefghij"},
        "space": None,
        "space/moon": OUTDOORS,
        "space/apollo_lander": TECH,
        "space/voyager2": TECH,
        "space/spacewalk": PEOPLE,
        "sports": SPORTS,
        "symbols": None,
        "symbols/alphabets": TEXT,
        "symbols/alphabets/asl": None,
        "symbols/alphabets/english/outlined": None,
        "symbols/alphabets/german/outlined": None,
        "symbols/alphabets/spanish/outlined": None,
        "symbols/faces": TEXT,
        "town": OUTDOORS,
        "town/flags": None,
        "town/roadsigns": None,
        "vehicles": VEHICLES,
        "vehicles/emergency/sedan_police": None,
    }
)


@dataclass(frozen=True)
class Stamp:
    """One stamp image: `folder` is relative to the stamps root (POSIX separators), `name` the file stem."""

    path: Path
    category: str
    description: str
    folder: str
    name: str
    cartoon: bool

    @property
    def key(self) -> str:
        """The stamp's path relative to the stamps root, without extension: stable across machines."""
        return f"{self.folder}/{self.name}" if self.folder else self.name


# --- where the stamps are -------------------------------------------------------------------------------


def default_cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "feedlens" / "tuxpaint")


def stamps_root(cache: Path | None = None, *, installed: Path = INSTALLED_ROOT) -> Path | None:
    """The installed stamps folder, else a complete cache (its VERSION is written last), else None."""
    if installed.is_dir():
        return installed
    cache = cache or default_cache()
    if (cache / "VERSION").is_file() and (cache / "stamps").is_dir():
        return cache / "stamps"
    return None


def _run(cmd: Sequence[str], cwd: Path) -> str:
    """Run a command and return its stdout; any failure is a RuntimeError naming the command."""
    shown = shlex.join(cmd)
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, capture_output=True, text=True, check=False, timeout=_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"`{shown}` (in {cwd}) could not run: {exc}") from exc
    if done.returncode != 0:
        hint = ""
        if cmd[:2] == ["apt-get", "download"]:
            hint = f" (run `apt-get update` first if the package is unknown, or `apt-get install {PACKAGE}`)"
        raise RuntimeError(
            f"`{shown}` (in {cwd}) failed with exit status {done.returncode}{hint}: "
            f"{done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def ensure_stamps(cache: Path | None = None, *, installed: Path = INSTALLED_ROOT) -> Path:
    """The stamps folder, downloading and extracting the Debian package into `cache` first if need be.

    About 160 MB are downloaded once; the extracted cache keeps ~40 MB (PNG, SVG, text). A file lock makes
    concurrent callers wait for one download instead of racing.
    """
    found = stamps_root(cache, installed=installed)
    if found is not None:
        return found
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = stamps_root(cache, installed=installed)
        if found is not None:
            return found
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            work = Path(tmp)
            _run(["apt-get", "download", PACKAGE], cwd=work)
            debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
            if len(debs) != 1:
                raise RuntimeError(f"`apt-get download {PACKAGE}` in {work} left {len(debs)} .deb files")
            version = _run(["dpkg-deb", "-f", debs[0].name, "Version"], cwd=work).strip()
            _run(["dpkg-deb", "-x", debs[0].name, "tree"], cwd=work)
            extracted = work / "tree" / INSTALLED_ROOT.relative_to("/")
            if not extracted.is_dir():
                raise RuntimeError(f"{debs[0].name} has no {INSTALLED_ROOT}")
            for path in extracted.rglob("*"):
                if path.suffix in _PRUNED_SUFFIXES:
                    path.unlink()
            notice = work / "tree" / "usr" / "share" / "doc" / PACKAGE / "copyright"
            if notice.is_file():
                shutil.copyfile(notice, cache / "copyright")
            target = cache / "stamps"
            if target.exists():  # left by an attempt that died before writing VERSION
                shutil.rmtree(target)
            extracted.rename(target)
            (cache / "VERSION").write_text(version + "\n", encoding="utf-8")
    return target


def package_version(root: Path, *, installed: Path = INSTALLED_ROOT) -> str:
    """The Debian version `root` came from: dpkg's record if installed, else the cache's VERSION file."""
    if root.resolve() == installed.resolve():
        return _run(["dpkg-query", "--show", "--showformat=${Version}", PACKAGE], cwd=Path("/")).strip()
    version_file = root.parent / "VERSION"
    if not version_file.is_file():
        raise RuntimeError(
            f"{root} is neither {installed} nor a cache made by ensure_stamps (no {version_file})"
        )
    return version_file.read_text(encoding="utf-8").strip()


# --- labels ---------------------------------------------------------------------------------------------


def match_prefix(key: str, mapping: Mapping[str, str | None] = FOLDER_CATEGORIES) -> str | None:
    """The longest mapping key that is a whole-component prefix of `key` ("a/b" fits "a/b/c", not "a/bc")."""
    parts = key.split("/")
    for end in range(len(parts), 0, -1):
        prefix = "/".join(parts[:end])
        if prefix in mapping:
            return prefix
    return None


def category_for(key: str, mapping: Mapping[str, str | None] = FOLDER_CATEGORIES) -> str | None:
    """The category of the stamp at `key` (relative path without extension); None if left out or unmapped."""
    prefix = match_prefix(key, mapping)
    return None if prefix is None else mapping[prefix]


def read_description(png: Path) -> str:
    """The English first line of the stamp's .txt, stripped; "" when there is none."""
    try:
        text = png.with_suffix(".txt").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text.lstrip("\ufeff").split("\n", 1)[0].strip()


def is_cartoon(png: Path, root: Path) -> bool:
    return "cartoon" in png.relative_to(root).parent.parts or png.with_suffix(".svg").exists()


def load_stamps(
    root: Path, *, include_cartoons: bool = False, mapping: Mapping[str, str | None] = FOLDER_CATEGORIES
) -> list[Stamp]:
    """The labelled stamps under `root`, sorted by key (see the module docstring for what is skipped)."""
    stamps: list[Stamp] = []
    seen: set[str] = set()
    for png in sorted(root.rglob("*.png"), key=lambda p: p.relative_to(root).with_suffix("").as_posix()):
        rel = png.relative_to(root)
        key = rel.with_suffix("").as_posix()
        if png.stem.endswith("_mirror") and png.with_name(png.name.replace("_mirror.png", ".png")).exists():
            continue
        cartoon = is_cartoon(png, root)
        category = category_for(key, mapping)
        if category is None or (cartoon and not include_cartoons):
            continue
        with Image.open(png) as image:  # reads the header only
            if min(image.size) < MIN_SIDE:
                continue
        digest = hashlib.sha1(png.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        folder = rel.parent.as_posix()
        stamps.append(
            Stamp(png, category, read_description(png), "" if folder == "." else folder, png.stem, cartoon)
        )
    return stamps


def category_counts(stamps: Iterable[Stamp]) -> Counter[str]:
    return Counter(stamp.category for stamp in stamps)


def split(
    stamps: Sequence[Stamp], test_fraction: float = 0.5, seed: str = "feedlens"
) -> tuple[list[Stamp], list[Stamp]]:
    """A (dev, test) split, stratified per category and the same on every machine.

    Within each category the stamps are ordered by sha1(seed + key) (their relative path, not their place on
    disk) and the first round(n * test_fraction) go to test; a category of two or more keeps at least one
    stamp on each side. Both lists come back sorted by key.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    by_category: dict[str, list[Stamp]] = {}
    for stamp in stamps:
        by_category.setdefault(stamp.category, []).append(stamp)
    dev: list[Stamp] = []
    test: list[Stamp] = []
    for unordered in by_category.values():
        members = sorted(unordered, key=lambda s: hashlib.sha1(f"{seed}\0{s.key}".encode()).hexdigest())
        n_test = math.floor(len(members) * test_fraction + 0.5)
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.extend(members[:n_test])
        dev.extend(members[n_test:])
    return sorted(dev, key=lambda s: s.key), sorted(test, key=lambda s: s.key)


# --- pixels ---------------------------------------------------------------------------------------------


def render(
    stamp: Stamp | Path,
    size: int = 256,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    padding: float = 0.08,
) -> Image.Image:
    """The stamp flattened onto `background`: an RGB image of size x size, aspect kept, centred.

    The object's longer side spans size * (1 - 2 * padding) pixels (small stamps are scaled up with Lanczos).
    """
    if not 0.0 <= padding < 0.5:
        raise ValueError(f"padding must lie in [0, 0.5), got {padding}")
    path = stamp.path if isinstance(stamp, Stamp) else stamp
    with Image.open(path) as source:
        rgba = source.convert("RGBA")  # P with a transparency key, LA and RGB all become RGBA
    flat = Image.new("RGBA", rgba.size, (*background, 255))
    flat.alpha_composite(rgba)
    inner = max(1, round(size * (1.0 - 2.0 * padding)))
    scale = inner / max(flat.size)
    width, height = max(1, round(flat.width * scale)), max(1, round(flat.height * scale))
    resized = flat.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), background)
    canvas.paste(resized, ((size - width) // 2, (size - height) // 2))
    return canvas


def to_jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def stamps_or_skip() -> Path:
    """The stamps folder for a test: a skip when missing locally, a failure on CI (where
    scripts/install-system-deps.sh must have installed them)."""
    import pytest  # only tests call this; the benchmark imports the module without pytest's help

    root = stamps_root()
    if root is None:
        message = "Tux Paint stamps not installed (scripts/install-system-deps.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


def pick(
    categories: Sequence[str], train: int, held: int, stamps: Sequence[Stamp] | None = None
) -> tuple[list[Stamp], list[Stamp]]:
    """`train` stamps per category from the dev half of `split` and `held` from its test half, in category
    order (the training tests' small labelled sets). Skips the test when the stamps are not installed."""
    chosen = [s for s in (stamps or load_stamps(stamps_or_skip())) if s.category in categories]
    dev, test = split(chosen)
    return (
        [s for c in categories for s in [x for x in dev if x.category == c][:train]],
        [s for c in categories for s in [x for x in test if x.category == c][:held]],
    )
