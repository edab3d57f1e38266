"""Brand names in an image's text (fuzzy: OCR misreads letters and drops spaces) and in captions and
hashtags (exact words), always on word boundaries.

Text: every alias is compared with every run of as many consecutive words, both as read ("coca cola")
and with the spaces dropped ("cocacola"), by Levenshtein distance (rapidfuzz) after folding the characters
OCR confuses (0/o, 1/l/i, 5/s). How many edits an alias tolerates grows with its length: none up to 4
letters ("H&M", "Nike": "like" is not Nike, "N1KE" is), one up to 7, then about one in eight, so
"Starbucks" read as "Starbucka" is found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

_TOKEN = re.compile(r"[^\W_]+(?:[&'][^\W_]+)*", re.UNICODE)  # words; "h&m", "macy's" stay whole


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


_CONFUSABLE = str.maketrans({"0": "o", "1": "i", "l": "i", "|": "i", "!": "i", "5": "s"})


def fold(text: str) -> str:
    """Characters OCR reads for one another map to one, for comparison only."""
    return text.translate(_CONFUSABLE)


def allowed_edits(alias: str) -> int:
    letters = len(alias.replace(" ", ""))
    if letters <= 4:
        return 0
    if letters <= 7:
        return 1
    return max(1, letters // 8)


@dataclass(frozen=True, slots=True)
class BrandTerms:
    """What identifies a brand in words: its name and aliases (spellings), and its hashtags."""

    name: str
    aliases: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()

    def spellings(self) -> tuple[tuple[str, ...], ...]:
        """Each alias (the name first) as its words."""
        out = []
        for alias in (self.name, *self.aliases):
            words = tuple(tokens(alias))
            if words and words not in out:
                out.append(words)
        return tuple(out)

    def tags(self) -> set[str]:
        """Hashtags that mean the brand: the listed ones and each alias without spaces."""
        listed = {normalise(t).lstrip("#") for t in self.hashtags}
        return {t for t in listed if t} | {"".join(words) for words in self.spellings()}


@dataclass(frozen=True, slots=True)
class TextMatch:
    brand: str
    matched: str  # the words as read
    score: float  # 1.0 exact, less with each edit


def _windows(words: Sequence[str], n: int) -> Iterable[tuple[int, str, str]]:
    for start in range(len(words) - n + 1):
        run = words[start : start + n]
        yield start, " ".join(run), "".join(run)


def text_mentions(text: str, brands: Sequence[BrandTerms]) -> list[TextMatch]:
    """Best fuzzy match of each brand in OCR text (at most one match per brand)."""
    words = tokens(text)
    best: dict[str, TextMatch] = {}
    for brand in brands:
        for spelling in brand.spellings():
            alias, joined_alias = " ".join(spelling), "".join(spelling)
            budget = allowed_edits(joined_alias)
            # a run of up to one word more or fewer than the alias: OCR splits and joins words
            for n in {max(1, len(spelling) - 1), len(spelling), len(spelling) + 1}:
                for _, spaced, joined in _windows(words, n):
                    if abs(len(joined) - len(joined_alias)) > budget:
                        continue
                    edits = Levenshtein.distance(fold(joined), fold(joined_alias), score_cutoff=budget)
                    if edits > budget:
                        continue
                    score = 1.0 - edits / max(len(joined_alias), 1)
                    if spaced != alias and joined != joined_alias:
                        score *= 0.95  # an inexact reading counts a little less than the exact one
                    if brand.name not in best or score > best[brand.name].score:
                        best[brand.name] = TextMatch(brand.name, spaced, round(score, 4))
    return sorted(best.values(), key=lambda m: -m.score)


def caption_mentions(caption: str, hashtags: Iterable[str], brands: Sequence[BrandTerms]) -> list[TextMatch]:
    """Brands named in a caption (whole words, exact) or by a hashtag (exact, '#' and case ignored)."""
    words = tokens(caption)
    joined = f" {' '.join(words)} "
    tags = {normalise(t).lstrip("#") for t in hashtags} | {w for w in words}
    tags |= {normalise(m).lstrip("#") for m in re.findall(r"#[^\s#]+", caption)}
    out = []
    for brand in brands:
        named = next((" ".join(s) for s in brand.spellings() if f" {' '.join(s)} " in joined), None)
        if named is not None:
            out.append(TextMatch(brand.name, named, 1.0))
            continue
        tag = next((t for t in sorted(brand.tags()) if t in tags), None)
        if tag is not None:
            out.append(TextMatch(brand.name, f"#{tag}", 1.0))
    return out
