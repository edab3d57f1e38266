"""How a post feels: VADER on its words, the faces' emotions, combined into one score with its parts kept.

VADER (`vaderSentiment`, MIT) is a lexicon and rules made for social-media text: it reads emoji, CAPS,
"!!!", "but" and negations ("not good"), ships its lexicon in the wheel and needs no model or network.
Its `compound` score in [-1, 1] is used as is for two parts:

- `caption`: the post's caption with its hashtags (CamelCase tags split into words: #NeverAgain reads
  "Never Again"; @mentions and links dropped);
- `image_text`: the text read in the image (OCR), when it holds at least two words;

and the third part is `faces`: P(positive) - P(negative) of the faces' mean emotion distribution
(core/results/faces.py EmotionSummary.sentiment_score), also in [-1, 1].

The score is the weighted mean of the parts present (FEEDLENS_INSIGHTS__*_WEIGHT); the label follows
VADER's own cut-offs (>= 0.05 positive, <= -0.05 negative). What it gets wrong is in docs/insights.md:
sarcasm reads as meant, and text in other languages than English mostly reads neutral.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from feedlens.config import InsightsSettings
from feedlens.core.results import FacesResult
from feedlens.core.results.text import TextResult

POSITIVE, NEUTRAL, NEGATIVE, UNKNOWN = "positive", "neutral", "negative", "unknown"
LABELS = (POSITIVE, NEUTRAL, NEGATIVE)
PARTS = ("caption", "image_text", "faces")

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@[\w.]+")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[^\W\d_]{2,}")

_analyzer: Any = None
_analyzer_lock = threading.Lock()


def _vader() -> Any:
    """The one VADER analyser of the process (its lexicons take ~0.1 s to read)."""
    global _analyzer  # noqa: PLW0603 - a lazily built, read-only singleton
    with _analyzer_lock:
        if _analyzer is None:
            from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
                SentimentIntensityAnalyzer,
            )

            _analyzer = SentimentIntensityAnalyzer()
        return _analyzer


def vader_version() -> str:
    try:
        return metadata.version("vaderSentiment")
    except metadata.PackageNotFoundError:  # pragma: no cover - a pinned dependency
        return "unknown"


def _tag_words(match: re.Match[str]) -> str:
    return _CAMEL.sub(" ", match.group(1).replace("_", " "))


def readable(text: str, hashtags: Iterable[str] = ()) -> str:
    """What VADER reads of a caption: links and @mentions out, hashtags as words, and the post's extra
    hashtags (those its caption does not already carry) appended."""
    written = {t.lower() for t in _HASHTAG.findall(text)}
    extra = [t for t in hashtags if t.lower().lstrip("#") not in written]
    text = _MENTION.sub(" ", _URL.sub(" ", text))
    text = " ".join([text, *(f"#{t.lstrip('#')}" for t in extra)])
    return " ".join(_HASHTAG.sub(_tag_words, text).split())


def text_score(text: str | None, hashtags: Iterable[str] = (), min_words: int = 1) -> float | None:
    """VADER's compound score of a caption or image text, rounded to 4 places; None when it has fewer
    than `min_words` words of two letters or more (nothing to read)."""
    cleaned = readable(text or "", hashtags)
    if len(_WORD.findall(cleaned)) < min_words and not _has_emoji(cleaned):
        return None
    return round(float(_vader().polarity_scores(cleaned)["compound"]), 4)


_EMOJI_RANGES = ((0x2190, 0x21FF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x1F000, 0x1FAFF))


def _has_emoji(text: str) -> bool:
    """Arrows, symbols, dingbats and the emoji planes: VADER reads them (its emoji lexicon) as words."""
    return any(lo <= ord(ch) <= hi for ch in text for lo, hi in _EMOJI_RANGES)


def image_text_score(text: TextResult | None) -> float | None:
    """The image text part: OCR text of at least two words (a lone OCR'd word is mostly a logo or noise)."""
    if text is None or not text.full_text.strip():
        return None
    return text_score(text.full_text, min_words=2)


def faces_score(faces: FacesResult | None) -> float | None:
    """The faces part: P(positive) - P(negative) over the faces' mean emotions; None without a face."""
    if faces is None or faces.emotion_summary is None:
        return None
    return round(float(faces.emotion_summary.sentiment_score), 4)


@dataclass(frozen=True, slots=True)
class Sentiment:
    """One score in [-1, 1] (None when no part was present), its label, and the parts it came from."""

    score: float | None
    label: str
    caption: float | None
    image_text: float | None
    faces: float | None

    def parts(self) -> dict[str, float | None]:
        return {"caption": self.caption, "image_text": self.image_text, "faces": self.faces}

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "label": self.label, "parts": self.parts()}


class SentimentModel:
    """The combination rule under one set of settings, and the version string rows are stored with."""

    def __init__(self, settings: InsightsSettings) -> None:
        self.settings = settings
        self.weights = {
            "caption": settings.caption_weight,
            "image_text": settings.image_text_weight,
            "faces": settings.faces_weight,
        }
        w = self.weights
        self.version = f"vader-{vader_version()}:{w['caption']:g},{w['image_text']:g},{w['faces']:g}"

    def label(self, score: float | None) -> str:
        if score is None:
            return UNKNOWN
        if score >= self.settings.positive_at:
            return POSITIVE
        if score <= self.settings.negative_at:
            return NEGATIVE
        return NEUTRAL

    def combine(self, caption: float | None, image_text: float | None, faces: float | None) -> Sentiment:
        """The weighted mean of the parts present (a part with weight 0 is kept but does not count)."""
        parts = {"caption": caption, "image_text": image_text, "faces": faces}
        present = [(self.weights[k], v) for k, v in parts.items() if v is not None and self.weights[k] > 0]
        total = sum(w for w, _ in present)
        score = round(sum(w * v for w, v in present) / total, 4) if total > 0 else None
        return Sentiment(score, self.label(score), caption, image_text, faces)


def mean(values: Sequence[float | None]) -> float | None:
    """The mean of the values present, rounded to 4 places; None when none is."""
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None
