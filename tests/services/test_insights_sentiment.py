"""Post sentiment with the real VADER lexicon (offline: its files ship in the wheel): captions with emoji,
negation, hashtags and CAPS; image text; the weighted combination; and the failures docs/insights.md
states, pinned so the page stays true."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from feedlens.config import InsightsSettings
from feedlens.core.results import Box, Face, FacesResult
from feedlens.core.results.faces import EMOTIONS
from feedlens.core.results.text import TextLine, TextResult
from feedlens.services.insights.sentiment import (
    SentimentModel,
    faces_score,
    image_text_score,
    readable,
    text_score,
)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No socket can be opened: VADER must read its lexicon from the wheel, never from the network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def label(text: str) -> str:
    return SentimentModel(InsightsSettings()).label(text_score(text))


def test_vader_reads_emoji_negation_and_emphasis(offline: None) -> None:
    assert label("best flat white in town ☕😍") == "positive"
    assert label("worst coffee ever 😡") == "negative"
    assert label("the coffee was not good at all") == "negative"  # negation
    assert label("Not bad at all 👍") == "positive"  # a negated negative
    assert label("Our new store opens on Monday at 9.") == "neutral"
    emoji = text_score("😍")
    assert emoji is not None and emoji > 0  # an emoji alone is read
    plain, caps, bang = (
        text_score("this is great"),
        text_score("this is GREAT"),
        text_score("this is great!!!"),
    )
    assert plain is not None and caps is not None and bang is not None
    assert caps > plain and bang > plain  # CAPS and "!!!" strengthen


def test_captions_hashtags_mentions_and_links() -> None:
    assert readable("Loving it @brewly https://brew.ly/x #NeverAgain #coffee", ["coffee", "latte"]) == (
        "Loving it Never Again coffee latte"
    )  # CamelCase tags split, the extra tag appended once, mention and link dropped
    hate = text_score("#IHateMondays")
    assert hate is not None and hate < 0
    assert text_score("") is None and text_score("   ") is None and text_score("@brewly") is None
    assert text_score("ok", ["love"]) is not None  # the post's hashtags count with its caption


def _text(words: str) -> TextResult:
    return TextResult.of([[TextLine(words, 0.9, Box(0.1, 0.1, 0.9, 0.2), "rapidocr")]])


def _faces(*emotions: str) -> FacesResult:
    faces = [
        Face(Box(0.1 * i, 0.1, 0.1 * i + 0.1, 0.3), 0.9 - 0.1 * i, "blazeface", {
            e: 0.8 if e == emotion else 0.2 / 6 for e in EMOTIONS
        }, emotion)
        for i, emotion in enumerate(emotions)
    ]  # fmt: skip
    return FacesResult.of(faces)


def test_image_parts() -> None:
    sale = image_text_score(_text("AMAZING DEALS TODAY"))
    assert sale is not None and sale > 0
    assert image_text_score(_text("BREWLY")) is None  # one word: mostly a logo, not a sentence
    assert image_text_score(TextResult.empty(gated=True)) is None and image_text_score(None) is None
    happy, mixed = faces_score(_faces("happy")), faces_score(_faces("happy", "angry"))
    assert happy is not None and mixed is not None
    # happy 0.8 against four negative emotions at 0.2/6; then the mean of a happy and an angry face:
    # happy (0.8 + 0.2/6)/2 against angry (0.2/6 + 0.8)/2 plus disgust, fear and sad at 0.2/6 each
    assert happy == pytest.approx(0.8 - 4 * 0.2 / 6, abs=1e-3)
    assert mixed == pytest.approx(-3 * 0.2 / 6, abs=1e-3)
    assert faces_score(FacesResult.empty()) is None


def test_weighted_combination_of_the_parts_present() -> None:
    model = SentimentModel(InsightsSettings(caption_weight=1.0, image_text_weight=0.5, faces_weight=0.5))
    both = model.combine(0.6, None, -0.3)
    assert both.score == pytest.approx((0.6 - 0.15) / 1.5, abs=1e-4) and both.label == "positive"
    assert both.parts() == {"caption": 0.6, "image_text": None, "faces": -0.3}
    assert model.combine(None, None, -0.04).label == "neutral"  # within VADER's +-0.05
    assert model.combine(None, None, None).label == "unknown"
    no_faces = SentimentModel(InsightsSettings(faces_weight=0.0))
    assert no_faces.combine(0.2, None, -1.0).score == 0.2  # kept as a part, not counted
    assert no_faces.version != model.version  # other weights: rows are recomputed


def test_documented_failures() -> None:
    """What docs/insights.md says VADER gets wrong, as it gets it wrong today."""
    assert label("Great, another 40 minute wait. Just what I needed.") == "positive"  # sarcasm
    assert label("Oh wonderful, my latte is cold AGAIN") == "positive"  # sarcasm
    assert label("¡Me encanta este café!") == "neutral"  # Spanish: "I love this coffee"
    assert label("Ce café est horrible") == "negative"  # a word shared with English carries it
    assert label("quick espresso stop") == "negative"  # "stop" is negative in the lexicon
    assert label("new menu is 🔥🔥") == "negative"  # 🔥 reads as "fire"
