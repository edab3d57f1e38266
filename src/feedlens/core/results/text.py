"""Results of the `text` analyzer (OCR): lines in reading order, the full text, and what it mentions.

Hashtags, @mentions and URLs are extracted from `full_text` (NFKC-normalised first: the recogniser sometimes
returns full-width `＃`/`＠`) by the regular expressions below, so they can be tested, and re-run on stored
`full_text`, without a model:

- hashtag: `#` not preceded by a word character, `#`, `&` (HTML entities such as `&#39;`) or `/` (URL
  fragments), then Unicode word characters (any script) holding at least one letter: `#2024` is not a tag.
- mention: `@` not preceded by a word character, `@` or `.` (so e-mail addresses are not mentions), then
  1-30 ASCII letters, digits, `_` or `.`, not ending in `.` (Instagram's user-name rule).
- URL: `http(s)://...` or `www....` up to the next whitespace, or a bare domain (`shop.com/sale`) whose
  top-level domain is one of `TLDS`, written all lower- or all upper-case (`background.It`, a sentence
  whose space the OCR lost, is not a URL). Trailing punctuation and unbalanced `)` are dropped.

Each list keeps its marker (`#`, `@`), is de-duplicated case-insensitively keeping the first spelling, and
follows reading order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.results.geometry import Box

HASHTAG_RE = re.compile(r"(?<![\w#&/])#\w*[^\W\d_]\w*")
MENTION_RE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?(?![A-Za-z0-9_@])")
# Common top-level domains: a bare `name.tld` only counts as a URL with one of these, so `e.g.`, `3.5` or
# `file.py` are not taken for links.
_TLD_LIST = (
    "com net org edu gov info biz io co ai app dev me tv ly gl gg link shop store online site xyz club blog "
    "news art live world life today uk de fr es it nl eu us ca au in jp cn ru br ch se no dk fi pl be at ie "
    "nz mx kr tw hk sg za pt gr cz"
)
TLDS = tuple(_TLD_LIST.split())
_TLD = "|".join(sorted([*TLDS, *(t.upper() for t in TLDS)], key=len, reverse=True))
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
URL_RE = re.compile(
    r"(?<![\w@.\-/])(?:"
    r"(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)[^\s<>\"']+"
    rf"|(?:{_LABEL}\.)+(?:{_TLD})(?![\w\-])(?:[/?#][^\s<>\"']*)?"
    r")"
)
_TRAILING = ".,;:!?'\"»”’"


def _dedup(items: Iterable[str]) -> tuple[str, ...]:
    """Drop case-insensitive repeats, keeping the first spelling and the order of first appearance."""
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return tuple(out)


def _trim_url(url: str) -> str:
    url = url.rstrip(_TRAILING)
    while url.endswith(")") and url.count(")") > url.count("("):  # "(see shop.com/sale)"
        url = url[:-1].rstrip(_TRAILING)
    return url


def extract_hashtags(text: str) -> tuple[str, ...]:
    """`#tags` in order of appearance, with their `#`, deduplicated case-insensitively."""
    return _dedup(m.group(0) for m in HASHTAG_RE.finditer(unicodedata.normalize("NFKC", text)))


def extract_mentions(text: str) -> tuple[str, ...]:
    """`@handles` in order of appearance, with their `@`, deduplicated case-insensitively."""
    return _dedup(m.group(0) for m in MENTION_RE.finditer(unicodedata.normalize("NFKC", text)))


def extract_urls(text: str) -> tuple[str, ...]:
    """Links with or without a scheme (`https://a.com/x`, `www.a.com`, `shop.com/sale`), as written."""
    found = (_trim_url(m.group(0)) for m in URL_RE.finditer(unicodedata.normalize("NFKC", text)))
    return _dedup(u for u in found if u.lower() not in {"", "http://", "https://", "www."})


@dataclass(frozen=True, slots=True)
class TextLine:
    """One recognised line: its `text`, the recogniser's mean character `confidence` (0..1), a normalised
    upright `box` that covers the detected (possibly rotated) text region, and the `engine` that read it."""

    text: str
    confidence: float
    box: Box
    engine: str

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("a text line must hold text")
        check_score(self.confidence, f"text line {self.text!r}")
        if not self.engine:
            raise ValueError("text line engine must be named")


def group_rows(anchors: Sequence[tuple[float, float, float]]) -> list[list[int]]:
    """Reading order from line anchors `(x, y_centre, height)` in a frame where text runs horizontally:
    indices grouped into rows (top to bottom), each row left to right.

    A line joins a row when its vertical extent overlaps the row's first line by at least half the smaller
    of their heights: words of one visual line that the detector split into boxes end up side by side.
    """
    rows: list[list[int]] = []
    for i in sorted(range(len(anchors)), key=lambda k: (anchors[k][1], anchors[k][0])):
        _, cy, h = anchors[i]
        for row in rows:
            _, ry, rh = anchors[row[0]]
            overlap = min(cy + h / 2, ry + rh / 2) - max(cy - h / 2, ry - rh / 2)
            if overlap >= 0.5 * min(h, rh):
                row.append(i)
                break
        else:
            rows.append([i])
    return [sorted(row, key=lambda k: anchors[k][0]) for row in rows]


def reading_order(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    """Rows of `lines` from their upright boxes (`group_rows`); for text that is not level, the analyzer
    groups with anchors taken from the deskewed detection quads instead."""
    anchors = [(ln.box.x0, (ln.box.y0 + ln.box.y1) / 2, ln.box.y1 - ln.box.y0) for ln in lines]
    return [[lines[i] for i in row] for row in group_rows(anchors)]


@dataclass(frozen=True, slots=True)
class TextResult:
    """Output of the `text` analyzer.

    `lines` are in reading order; `full_text` joins each row's lines with a space and rows with a newline.
    `hashtags`, `mentions` and `urls` are extracted from `full_text` (see the module docstring). `gated` is
    True when the cheap text-presence check found no text and recognition was skipped (then no lines).
    """

    SCHEMA: ClassVar[str] = "feedlens.text/1"

    lines: tuple[TextLine, ...]
    full_text: str
    hashtags: tuple[str, ...]
    mentions: tuple[str, ...]
    urls: tuple[str, ...]
    gated: bool

    def __post_init__(self) -> None:
        if self.gated and self.lines:
            raise ValueError("a gated result cannot hold lines: recognition did not run")
        if bool(self.lines) != bool(self.full_text):
            raise ValueError("full_text must be empty exactly when there are no lines")
        if not all(h.startswith("#") for h in self.hashtags):
            raise ValueError("hashtags must start with '#'")
        if not all(m.startswith("@") for m in self.mentions):
            raise ValueError("mentions must start with '@'")

    @classmethod
    def empty(cls, gated: bool = False) -> Self:
        return cls(lines=(), full_text="", hashtags=(), mentions=(), urls=(), gated=gated)

    @classmethod
    def of(cls, rows: Sequence[Sequence[TextLine]]) -> Self:
        """Lines already grouped into rows in reading order (see `reading_order`, `group_rows`) -> result
        with `full_text`, hashtags, mentions and URLs."""
        full_text = "\n".join(" ".join(ln.text for ln in row) for row in rows if row)
        return cls(
            lines=tuple(ln for row in rows for ln in row),
            full_text=full_text,
            hashtags=extract_hashtags(full_text),
            mentions=extract_mentions(full_text),
            urls=extract_urls(full_text),
            gated=False,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self)}
