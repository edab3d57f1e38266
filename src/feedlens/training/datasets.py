"""Labelled image datasets for training: loading, validation, a stable split, a hash and class balance.

A dataset is single-label classification: an ordered list of class names and items, each an image source
(a file `Path`, encoded `bytes`, or a `str` image id that the caller resolves later) with a stable `key` and
exactly one class. Sources of labels:

- `from_folder`: ImageFolder, `root/<class>/**/<image>`; class = top-level sub-folder name, images may be
  nested; hidden names (".x") are skipped; files whose content is not an accepted image format are problems;
  files directly in `root` are ignored (README, licence) unless they are images (then a problem).
- `from_csv`: a `path,label` header (exactly those columns), paths relative to the CSV's folder.
- `from_coco`: `images` [{id, file_name}], `categories` [{id, name}], `annotations` [{image_id, category_id}].
- `from_labels`: (image id, class name) pairs, e.g. a workspace's positive category labels.

**Single-label rule.** COCO annotations and workspace labels are multi-label. An image becomes an item only
when its annotations/pairs name exactly one distinct class (repeats of the same class count once); images
with several classes, and COCO images with none, are left out and listed in `LabelledDataset.dropped` with
the reason, never guessed at. A CSV is single-label by definition: a path listed twice is a problem.

Validation collects every problem and raises one `DatasetError` listing them all (codes in
`ProblemCode`). Pixels are not read when loading: corrupt images surface per item when the safe decoder
decodes them (`load_image`), and `check_images` decodes each once to list the bad ones up front.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from feedlens.core.errors import FeedlensError
from feedlens.images import DecodedImage, ImageDecoder, sniff_format

Source = Path | bytes | str
Resolver = Callable[[str], Path | bytes]  # image id -> its file or bytes; raises a FeedlensError if unknown
HASH_VERSION = "feedlens-dataset-v1"
_MAX_SHOWN = 20  # problems spelled out in the error message; `problems` keeps them all


class ProblemCode(StrEnum):
    """Why a dataset was refused. Stable strings."""

    TOO_FEW_CLASSES = "too_few_classes"
    DUPLICATE_CLASS = "duplicate_class"
    EMPTY_CLASS = "empty_class"
    UNKNOWN_LABEL = "unknown_label"
    DUPLICATE_ITEM = "duplicate_item"
    MISSING_FILE = "missing_file"
    NOT_AN_IMAGE = "not_an_image"
    MALFORMED = "malformed"  # bad CSV header or row, bad JSON structure, dangling reference


@dataclass(frozen=True, slots=True)
class Problem:
    code: ProblemCode
    message: str

    def __str__(self) -> str:
        return self.message


class DatasetError(FeedlensError):
    """A dataset that cannot be used; `problems` lists every reason (each with its own code)."""

    code = "dataset_invalid"
    http_status = 422

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(p.message for p in self.problems[:_MAX_SHOWN])
        more = len(self.problems) - _MAX_SHOWN
        super().__init__("invalid dataset: " + shown + (f"; ... and {more} more" if more > 0 else ""))

    @property
    def codes(self) -> set[str]:
        return {p.code.value for p in self.problems}

    def problem_lines(self) -> list[str]:
        return [f"[{p.code.value}] {p.message}" for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        problems = [{"code": p.code.value, "message": p.message} for p in self.problems]
        return {"code": self.code, "message": self.message, "problems": problems}


@dataclass(frozen=True, slots=True)
class Item:
    key: str  # stable id: relative path (folder, CSV, COCO) or image id; what the split and hash use
    source: Source
    label: str


@dataclass(frozen=True, slots=True)
class BadImage:
    key: str
    code: str  # an ImageErrorCode value, or another FeedlensError's code from the resolver
    message: str


@dataclass(frozen=True)
class LabelledDataset:
    """Items (sorted by key on construction) and the ordered class list; validated, else `DatasetError`.

    `provenance` says where it came from ("folder:/data/x", "csv:...", "coco:...", "labels:..."); `dropped`
    lists (key, reason) of images left out by the single-label rule.
    """

    items: tuple[Item, ...]
    classes: tuple[str, ...]
    provenance: str = ""
    dropped: tuple[tuple[str, str], ...] = ()
    _index: dict[str, int] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(sorted(self.items, key=lambda i: i.key)))
        object.__setattr__(self, "classes", tuple(self.classes))
        problems = validate(self.items, self.classes)
        if problems:
            raise DatasetError(problems)
        self._index.update({name: i for i, name in enumerate(self.classes)})

    def __len__(self) -> int:
        return len(self.items)

    def index(self, label: str) -> int:
        return self._index[label]

    @property
    def targets(self) -> np.ndarray:
        """Class index of each item, shape (n,), int64, in `items` order."""
        return np.array([self._index[i.label] for i in self.items], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        """Items per class, in class order."""
        found = Counter(i.label for i in self.items)
        return {name: found[name] for name in self.classes}

    def without(self, keys: Iterable[str]) -> LabelledDataset:
        """A copy without the items `keys` (e.g. those `check_images` found bad); validated again."""
        gone = set(keys)
        return replace(self, items=tuple(i for i in self.items if i.key not in gone))

    def check_images(
        self, decoder: ImageDecoder, resolve: Resolver | None = None, min_side: int | None = 224
    ) -> list[BadImage]:
        """Decode every image once (through the safe decoder) and return the ones that fail, in key order."""
        bad: list[BadImage] = []
        for item in self.items:
            try:
                load_image(item, decoder, resolve, min_side)
            except FeedlensError as exc:
                bad.append(BadImage(item.key, exc.code, exc.message))
        return bad

    def dataset_hash(self) -> str:
        """SHA-256 (hex) identifying the training data, stable across machines and folder locations.

        Covers: `HASH_VERSION`, the class list in order (it fixes the label indices), and for every item in
        key order its key, its label and the SHA-256 of its content (file bytes for a `Path`, the bytes for
        `bytes`; a `str` image id is hashed as the id itself, so ids should be content-derived). Does not
        cover: `provenance`, `dropped`, absolute paths, file times, or how the data is later split (the split
        is a function of this hash's inputs plus the seed and fractions).
        """
        digest = hashlib.sha256(HASH_VERSION.encode())
        digest.update(json.dumps(list(self.classes), ensure_ascii=False).encode())
        for item in self.items:
            row = [item.key, item.label, _content_id(item)]
            digest.update(b"\n" + json.dumps(row, ensure_ascii=False).encode())
        return digest.hexdigest()


def _content_id(item: Item) -> str:
    if isinstance(item.source, bytes):
        return "sha256:" + hashlib.sha256(item.source).hexdigest()
    if isinstance(item.source, Path):
        try:
            with item.source.open("rb") as handle:
                return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise DatasetError([Problem(ProblemCode.MISSING_FILE, f"{item.key}: {exc}")]) from exc
    return "id:" + item.source


def load_image(
    item: Item, decoder: ImageDecoder, resolve: Resolver | None = None, min_side: int | None = 224
) -> DecodedImage:
    """Decode one item's image; raises `ImageError` (or the resolver's `FeedlensError`) for a bad one."""
    source = item.source
    if isinstance(source, str):
        if resolve is None:
            raise TypeError(f"{item.key}: an image id source needs a `resolve` function")
        source = resolve(source)
    return decoder.decode(source, min_side=min_side)


def validate(items: Sequence[Item], classes: Sequence[str]) -> list[Problem]:
    """Every problem with these items and classes (empty list: usable)."""
    problems: list[Problem] = []
    if len(set(classes)) < 2:
        problems.append(
            Problem(ProblemCode.TOO_FEW_CLASSES, f"at least 2 classes needed, got {len(classes)}")
        )
    folded = Counter(c.casefold() for c in classes)
    for name in classes:
        if not name.strip():
            problems.append(Problem(ProblemCode.MALFORMED, "a class name is empty"))
    for name in dict.fromkeys(c for c in classes if folded[c.casefold()] > 1):
        problems.append(Problem(ProblemCode.DUPLICATE_CLASS, f"class {name!r} is listed more than once"))
    known, used = set(classes), Counter(i.label for i in items)
    for label in sorted(set(used) - known):
        problems.append(
            Problem(ProblemCode.UNKNOWN_LABEL, f"label {label!r} ({used[label]} items) is not a class")
        )
    for name in dict.fromkeys(classes):
        if used[name] == 0:
            problems.append(Problem(ProblemCode.EMPTY_CLASS, f"class {name!r} has no images"))
    keys = Counter(i.key for i in items)
    for key in sorted(k for k, n in keys.items() if n > 1):
        problems.append(Problem(ProblemCode.DUPLICATE_ITEM, f"{key!r} is listed {keys[key]} times"))
    for item in items:
        if not item.key:
            problems.append(
                Problem(ProblemCode.MALFORMED, f"an item of class {item.label!r} has an empty key")
            )
        if isinstance(item.source, Path) and not item.source.is_file():
            problems.append(Problem(ProblemCode.MISSING_FILE, f"{item.key}: no file at {item.source}"))
    return problems


def _build(
    items: Sequence[Item],
    classes: Sequence[str],
    provenance: str,
    problems: list[Problem],
    dropped: Sequence[tuple[str, str]] = (),
) -> LabelledDataset:
    """The dataset, or one error with the loader's problems and the validation's together."""
    if problems:
        seen = {(p.code, p.message) for p in problems}
        extra = [p for p in validate(items, classes) if (p.code, p.message) not in seen]
        raise DatasetError([*problems, *extra])
    return LabelledDataset(tuple(items), tuple(classes), provenance, tuple(dropped))


def _is_image(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return sniff_format(handle.read(64)) is not None
    except OSError:
        return False


def _files(root: Path) -> list[Path]:
    """Regular files under `root`, sorted; hidden names skipped, hidden folders never entered."""
    out: list[Path] = []
    for folder, dirs, names in os.walk(root):  # symlinked folders are not followed: no cycles
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [Path(folder) / n for n in names if not n.startswith(".") and (Path(folder) / n).is_file()]
    return sorted(out)


def from_folder(root: Path, classes: Sequence[str] | None = None) -> LabelledDataset:
    """ImageFolder layout. `classes`: the class order (default: sub-folder names, sorted); keys are paths
    relative to `root`. A sub-folder that is not in `classes` is a problem, as is a class without images."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError([Problem(ProblemCode.MISSING_FILE, f"{root} is not a folder")])
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(classes) if classes is not None else folders
    problems: list[Problem] = []
    items: list[Item] = []
    for path in _files(root):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        image = _is_image(path)
        if len(rel.parts) == 1:
            if image:
                problems.append(Problem(ProblemCode.MALFORMED, f"{rel}: image outside any class folder"))
        elif not image:
            problems.append(Problem(ProblemCode.NOT_AN_IMAGE, f"{rel}: not a supported image format"))
        elif rel.parts[0] in names:
            items.append(Item(str(rel), path, rel.parts[0]))
    for folder in folders:
        if folder not in names:
            problems.append(Problem(ProblemCode.UNKNOWN_LABEL, f"folder {folder!r} is not a class"))
    return _build(items, names, f"folder:{root}", problems)


def from_csv(path: Path, classes: Sequence[str] | None = None) -> LabelledDataset:
    """A `path,label` CSV (UTF-8, BOM allowed). `classes` default: the labels, sorted. Keys are the paths as
    written (POSIX separators); files are looked up relative to the CSV's folder (absolute paths kept)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError([Problem(ProblemCode.MISSING_FILE, f"cannot read {path}: {exc}")]) from exc
    reader = csv.reader(io.StringIO(text))  # not splitlines(): a quoted field may hold a newline
    header = [h.strip() for h in next(reader, [])]
    if sorted(header) != ["label", "path"]:
        unknown = [h for h in header if h not in ("path", "label")]
        missing = [h for h in ("path", "label") if h not in header]
        raise DatasetError(
            [
                Problem(
                    ProblemCode.MALFORMED,
                    f"{path.name}: the header must be `path,label` (unknown columns: {unknown or 'none'}; "
                    f"missing: {missing or 'none'})",
                )
            ]
        )
    col_path, col_label = header.index("path"), header.index("label")
    problems: list[Problem] = []
    items: list[Item] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != 2 or not row[col_path].strip() or not row[col_label].strip():
            problems.append(
                Problem(ProblemCode.MALFORMED, f"{path.name} line {reader.line_num}: expected path,label")
            )
            continue
        written = row[col_path].strip().replace("\\", "/")
        key = str(PurePosixPath(written))
        items.append(Item(key, path.parent / written, row[col_label].strip()))
    names = list(classes) if classes is not None else sorted({i.label for i in items})
    return _build(items, names, f"csv:{path}", problems)


def _single_labels(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """key -> its one class, and (key, reason) for keys naming several distinct classes."""
    seen: dict[str, list[str]] = {}
    for key, label in pairs:
        labels = seen.setdefault(key, [])
        if label not in labels:
            labels.append(label)
    single = {key: labels[0] for key, labels in seen.items() if len(labels) == 1}
    several = [(k, "several classes: " + ", ".join(sorted(v))) for k, v in seen.items() if len(v) > 1]
    return single, several


def from_labels(
    pairs: Iterable[tuple[str, str]], classes: Sequence[str], provenance: str = "labels"
) -> LabelledDataset:
    """(image id, class name) pairs, e.g. a workspace's positive labels; sources are the ids (resolve them
    with `load_image(..., resolve=...)`). Images with several distinct classes are dropped (module doc)."""
    single, dropped = _single_labels(pairs)
    items = [Item(key, key, label) for key, label in single.items()]
    return _build(items, classes, provenance, [], dropped)


def from_coco(path: Path, image_root: Path | None = None) -> LabelledDataset:
    """COCO-style classification JSON; classes in the `categories` list's order, keys = `file_name`s, files
    under `image_root` (default: the JSON's folder). Single-label rule: see the module doc."""
    path = Path(path)
    image_root = Path(image_root) if image_root is not None else path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError([Problem(ProblemCode.MALFORMED, f"cannot read {path}: {exc}")]) from exc
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise DatasetError([Problem(ProblemCode.MALFORMED, f"{path.name}: not a JSON object")])
    for section in ("images", "categories", "annotations"):
        if not isinstance(data.get(section), list):
            problems.append(Problem(ProblemCode.MALFORMED, f"{path.name}: `{section}` must be a list"))
    if problems:
        raise DatasetError(problems)
    categories = _records(data["categories"], ("id", "name"), "categories", problems)
    images = _records(data["images"], ("id", "file_name"), "images", problems)
    annotations = _records(data["annotations"], ("image_id", "category_id"), "annotations", problems)
    cat_names: dict[Any, str] = {}
    for cat in categories:
        if cat["id"] in cat_names:
            problems.append(Problem(ProblemCode.MALFORMED, f"category id {cat['id']!r} is listed twice"))
        cat_names[cat["id"]] = str(cat["name"]).strip()
    files: dict[Any, str] = {}
    for image in images:
        if image["id"] in files:
            problems.append(Problem(ProblemCode.MALFORMED, f"image id {image['id']!r} is listed twice"))
        files[image["id"]] = str(PurePosixPath(str(image["file_name"]).replace("\\", "/")))
    pairs: list[tuple[str, str]] = []
    for i, ann in enumerate(annotations):
        if ann["image_id"] not in files:
            problems.append(Problem(ProblemCode.MALFORMED, f"annotations[{i}]: no image {ann['image_id']!r}"))
        elif ann["category_id"] not in cat_names:
            problems.append(
                Problem(ProblemCode.UNKNOWN_LABEL, f"annotations[{i}]: no category {ann['category_id']!r}")
            )
        else:
            pairs.append((files[ann["image_id"]], cat_names[ann["category_id"]]))
    single, dropped = _single_labels(pairs)
    dropped += [(key, "no annotation") for key in sorted(set(files.values()) - {k for k, _ in pairs})]
    items = [Item(key, image_root / key, label) for key, label in single.items()]
    return _build(items, list(cat_names.values()), f"coco:{path}", problems, dropped)


def _records(
    raw: list[Any], needed: tuple[str, ...], where: str, problems: list[Problem]
) -> list[dict[str, Any]]:
    """The entries of a COCO list that are objects holding `needed` keys; the others become problems."""
    out = []
    for i, entry in enumerate(raw):
        values = [entry.get(k) for k in needed] if isinstance(entry, Mapping) else [None]
        # ids must be hashable scalars; bool is an int subclass but never a meaningful id
        if any(v is None or v == "" or isinstance(v, bool) or not isinstance(v, int | str) for v in values):
            problems.append(Problem(ProblemCode.MALFORMED, f"{where}[{i}] needs {', '.join(needed)}"))
            continue
        out.append(dict(entry))
    return out


# --- split, report, balance --------------------------------------------------------------------------------
