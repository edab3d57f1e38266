"""Team-defined category taxonomies: the definition, its parsing (YAML or JSON) and its validation.

A taxonomy is a list of categories. Each has a name and what zero-shot categorisation compares an image
with: a description and example phrases (sentence-embedded), WordNet concepts (label roll-up) and
keywords/hashtags (matched in captions and image text). `parent` builds a hierarchy: a parent scores at
least as high as its best child. `other` is reserved: it is what an image gets when nothing fits.

Validation collects every problem (duplicate names, unknown parents, cycles, wrong types...) and raises
one `TaxonomyError` that lists them all, so a user fixes a file in one pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import yaml

from feedlens.core.errors import FeedlensError
from feedlens.core.nesting import MAX_DEPTH, json_depth, yaml_depth

OTHER = "other"
MAX_BYTES = 256 * 1024  # a taxonomy is a page of text; anything larger is a mistake or an attack
MAX_CATEGORIES = 500
MAX_NAME = 64
MAX_ITEMS = 100  # phrases, concepts or keywords per category
MAX_TEXT = 500
SIGNALS = ("faces", "text")  # evidence from other analyzers: faces found, text read
_WORD = re.compile(r"[^\w&+'-]+", re.UNICODE)


class TaxonomyError(FeedlensError):
    """A taxonomy definition that cannot be used; `problems` lists every reason."""

    code = "taxonomy_invalid"
    http_status = 422

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid taxonomy: " + "; ".join(self.problems))

    def problem_lines(self) -> list[str]:
        return list(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "problems": self.problems}


def normalise_keyword(word: str) -> str:
    """Keywords and hashtags compare lower-cased, without '#' and surrounding punctuation."""
    return word.strip().lstrip("#").strip().lower()


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    description: str = ""
    phrases: tuple[str, ...] = ()
    parent: str | None = None
    concepts: tuple[str, ...] = ()  # WordNet ids (n02121808) or concept names ("domestic animal")
    keywords: tuple[str, ...] = ()  # normalised: lower case, no '#'
    signals: tuple[str, ...] = ()  # of SIGNALS

    @property
    def texts(self) -> tuple[str, ...]:
        """What the sentence encoder embeds for this category: its name, description and phrases."""
        return tuple(dict.fromkeys(t for t in (self.name, self.description, *self.phrases) if t))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class Taxonomy:
    name: str
    categories: tuple[Category, ...]
    description: str = ""
    _by_name: dict[str, Category] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise TaxonomyError(problems)
        self._by_name.update({c.name.casefold(): c for c in self.categories})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def get(self, name: str) -> Category | None:
        return self._by_name.get(name.strip().casefold())

    def children(self, name: str) -> tuple[Category, ...]:
        return tuple(
            c for c in self.categories if c.parent is not None and c.parent.casefold() == name.casefold()
        )

    def ancestors(self, name: str) -> tuple[str, ...]:
        """Parents of `name`, nearest first (validated acyclic, so this ends)."""
        out: list[str] = []
        current = self.get(name)
        while current is not None and current.parent is not None:
            parent = self.get(current.parent)
            if parent is None:
                break
            out.append(parent.name)
            current = parent
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "categories": [c.to_dict() for c in self.categories],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build from parsed YAML/JSON; every problem found is reported at once."""
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise TaxonomyError(["the document must be a mapping with a `categories` list"])
        unknown = set(data) - {"name", "description", "categories"}
        if unknown:
            problems.append(f"unknown top-level keys: {', '.join(sorted(map(str, unknown)))}")
        name = data.get("name", "custom")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            problems.append(f"`name` must be a non-empty string of at most {MAX_NAME} characters")
            name = "custom"
        description = data.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_TEXT:
            problems.append(f"`description` must be a string of at most {MAX_TEXT} characters")
            description = ""
        raw = data.get("categories")
        if not isinstance(raw, list) or not raw:
            problems.append("`categories` must be a non-empty list")
            raise TaxonomyError(problems)
        if len(raw) > MAX_CATEGORIES:
            raise TaxonomyError([*problems, f"at most {MAX_CATEGORIES} categories, got {len(raw)}"])
        categories = []
        for i, item in enumerate(raw):
            category = _category(item, f"categories[{i}]", problems)
            if category is not None:
                categories.append(category)
        if problems:
            raise TaxonomyError(problems)
        return cls(name=name.strip(), description=description.strip(), categories=tuple(categories))


def _strings(value: Any, where: str, problems: list[str], max_len: int = MAX_TEXT) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        problems.append(f"{where} must be a list of at most {MAX_ITEMS} strings")
        return ()
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > max_len:
            problems.append(f"{where} holds {item!r}: not a non-empty string of at most {max_len} characters")
            continue
        out.append(item.strip())
    return tuple(dict.fromkeys(out))


def _category(item: Any, where: str, problems: list[str]) -> Category | None:
    if isinstance(item, str):  # shorthand: just a name
        item = {"name": item}
    if not isinstance(item, Mapping):
        problems.append(f"{where} must be a mapping (name, description, phrases, parent, concepts, keywords)")
        return None
    unknown = set(item) - {
        "name",
        "description",
        "phrases",
        "parent",
        "concepts",
        "keywords",
        "hashtags",
        "signals",
    }
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        problems.append(f"{where}: `name` must be a non-empty string of at most {MAX_NAME} characters")
        return None
    name = " ".join(name.split())
    description = item.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_TEXT:
        problems.append(f"{where} ({name}): `description` must be a string of at most {MAX_TEXT} characters")
        description = ""
    parent = item.get("parent")
    if parent is not None and (not isinstance(parent, str) or not parent.strip()):
        problems.append(f"{where} ({name}): `parent` must be a category name")
        parent = None
    keywords = _strings(item.get("keywords"), f"{where} ({name}).keywords", problems, MAX_NAME)
    keywords += _strings(item.get("hashtags"), f"{where} ({name}).hashtags", problems, MAX_NAME)
    signals = _strings(item.get("signals"), f"{where} ({name}).signals", problems, MAX_NAME)
    for signal in signals:
        if signal not in SIGNALS:
            problems.append(f"{where} ({name}): unknown signal {signal!r} (known: {', '.join(SIGNALS)})")
    return Category(
        name=name,
        description=description.strip(),
        phrases=_strings(item.get("phrases"), f"{where} ({name}).phrases", problems),
        parent=" ".join(parent.split()) if parent else None,
        concepts=_strings(item.get("concepts"), f"{where} ({name}).concepts", problems, MAX_NAME),
        keywords=tuple(dict.fromkeys(k for k in map(normalise_keyword, keywords) if k)),
        signals=tuple(s for s in signals if s in SIGNALS),
    )


def _problems(taxonomy: Taxonomy) -> list[str]:
    """Structural problems: empty, duplicates, reserved name, unknown parents, cycles, nothing to match."""
    problems: list[str] = []
    if not taxonomy.categories:
        return ["a taxonomy needs at least one category"]
    seen: dict[str, str] = {}
    for category in taxonomy.categories:
        key = category.name.casefold()
        if key == OTHER:
            problems.append(f"`{OTHER}` is reserved: images that fit no category get it")
        elif key in seen:
            problems.append(f"duplicate category name {category.name!r}")
        seen[key] = category.name
        if not (category.texts or category.concepts or category.keywords or category.signals):
            problems.append(f"category {category.name!r} has nothing to match images with")
    parents = {c.name.casefold(): (c.parent.casefold() if c.parent else None) for c in taxonomy.categories}
    for category in taxonomy.categories:
        if category.parent is not None and category.parent.casefold() not in parents:
            problems.append(f"category {category.name!r} names unknown parent {category.parent!r}")
    reported: set[str] = set()
    for start in parents:
        path: list[str] = []
        current: str | None = start
        while current is not None and current in parents and current not in path:
            path.append(current)
            current = parents[current]
        if current is not None and current in path:
            cycle = path[path.index(current) :]
            if not reported & set(cycle):
                reported.update(cycle)
                names = " -> ".join(seen.get(c, c) for c in [*cycle, current])
                problems.append(f"parent cycle: {names}")
    return problems


def parse_taxonomy(text: str | bytes, media_type: str | None = None) -> Taxonomy:
    """Parse a YAML or JSON document (JSON is YAML, but JSON errors read better from the JSON parser)."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise TaxonomyError([f"the document is larger than {MAX_BYTES} bytes"])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TaxonomyError([f"not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    if len(text) > MAX_BYTES:
        raise TaxonomyError([f"the document is larger than {MAX_BYTES} bytes"])
    if "\x00" in text:
        raise TaxonomyError(["the document contains NUL characters"])
    if not text.strip():
        raise TaxonomyError(["the document is empty"])
    as_json = (media_type or "").endswith("json") or text.lstrip().startswith(("{", "["))
    depth = json_depth(text.encode()) if as_json else yaml_depth(text)
    if depth > MAX_DEPTH:  # the parsers recurse: a few KB of nesting would cost seconds or the stack
        raise TaxonomyError([f"the document nests more than {MAX_DEPTH} levels deep"])
    try:
        data = json.loads(text) if as_json else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise TaxonomyError([f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise TaxonomyError([f"not valid YAML: {problem}{at}"]) from None
    except RecursionError:
        raise TaxonomyError(["the document is nested too deeply"]) from None
    return Taxonomy.from_dict(data)


def words(text: str) -> list[str]:
    """Lower-case words of a caption or OCR text, hashtags split off their '#' (keyword matching)."""
    return [w for w in (normalise_keyword(t).strip("'-") for t in _WORD.split(text.lower())) if w]
