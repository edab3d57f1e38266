"""Brand names in OCR text (fuzzy, word boundaries) and in captions and hashtags (exact)."""

from __future__ import annotations

import pytest

from feedlens.core.results.brands import BrandEvidence, BrandsResult
from feedlens.services.brands.mentions import BrandTerms, caption_mentions, text_mentions

BRANDS = [
    BrandTerms("Starbucks", ("Starbucks Coffee",), ("sbux",)),
    BrandTerms("Nike"),
    BrandTerms("H&M"),
    BrandTerms("Coca-Cola", ("Coke",)),
    BrandTerms("Lego"),
]


@pytest.mark.parametrize(
    ("text", "brand", "matched"),
    [
        ("Just do it NIKE", "Nike", "nike"),
        ("N1KE", "Nike", "n1ke"),  # OCR confusions folded
        ("STARBUCKA COFFEE on main st", "Starbucks", "starbucka coffee"),  # one misread letter
        ("drink COCA COLA", "Coca-Cola", "coca cola"),
        ("cocacola zero", "Coca-Cola", "cocacola"),  # OCR dropped the space
        ("COCA- COLA", "Coca-Cola", "coca cola"),
        ("H&M sale", "H&M", "h&m"),
        ("LEG0 set", "Lego", "leg0"),
        ("Star bucks", "Starbucks", "star bucks"),  # OCR split a word
    ],
)
def test_text_mentions_tolerate_ocr_errors(text: str, brand: str, matched: str) -> None:
    found = {m.brand: m for m in text_mentions(text, BRANDS)}
    assert brand in found and found[brand].matched == matched
    assert 0.7 < found[brand].score <= 1.0


@pytest.mark.parametrize("text", ["I like it", "legolas", "nikes", "HM sale", "coker", "starburst", ""])
def test_text_mentions_respect_word_boundaries_and_short_names(text: str) -> None:
    assert text_mentions(text, BRANDS) == []


def test_exact_readings_score_higher_than_misreadings() -> None:
    exact = text_mentions("STARBUCKS", BRANDS)[0].score
    misread = text_mentions("STARBUCKA", BRANDS)[0].score
    assert exact == 1.0 > misread


def test_caption_mentions_by_word_alias_or_hashtag() -> None:
    found = {
        m.brand: m.matched for m in caption_mentions("morning coffee at Starbucks, then a coke", [], BRANDS)
    }
    assert found == {"Starbucks": "starbucks", "Coca-Cola": "coke"}
    tags = {m.brand: m.matched for m in caption_mentions("new kicks", ["#Nike", "SBUX"], BRANDS)}
    assert tags == {"Nike": "#nike", "Starbucks": "#sbux"}
    inline = {m.brand for m in caption_mentions("weekend #cocacola #LEGO", [], BRANDS)}
    assert inline == {"Coca-Cola", "Lego"}
    assert caption_mentions("nikes are great; legolas too", ["nikeair"], BRANDS) == []


def test_brands_result_groups_evidence() -> None:
    result = BrandsResult.of(
        {
            "Nike": [
                BrandEvidence("text", 0.9, "nike"),
                BrandEvidence("logo", 0.95, "1", ((0, 0), (1, 0), (1, 1), (0, 1)), 30),
            ],
            "Lego": [BrandEvidence("caption", 1.0, "#lego")],
        },
        registry_version=3,
    )
    assert [m.brand for m in result.mentions] == ["Lego", "Nike"]
    nike = result.mentions[1]
    assert nike.score == 0.95 and nike.kinds == ("logo", "text")
    data = result.to_dict()
    assert data["brands"] == ["Lego", "Nike"] and data["registry_version"] == 3
    assert data["mentions"][1]["evidence"][0]["quad"] == [[0, 0], [1, 0], [1, 1], [0, 1]]
    with pytest.raises(ValueError):
        BrandEvidence("logo", 0.5, quad=((0, 0), (1, 1)))
    with pytest.raises(ValueError):
        BrandEvidence("text", 1.5)
