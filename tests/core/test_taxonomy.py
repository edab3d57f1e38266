"""Taxonomy parsing and validation: every bad document gets a TaxonomyError that names its problems."""

from __future__ import annotations

import json

import pytest

from feedlens.core.taxonomy import MAX_BYTES, Taxonomy, TaxonomyError, parse_taxonomy, words

GOOD = """
name: brand team
categories:
  - name: Food & Drink
    description: food or a drink
    phrases: [a plate of food, coffee]
    keywords: ["#Foodie", brunch]
  - name: Coffee
    parent: food & drink
    concepts: [espresso]
  - name: Our Product
    phrases: [a camera]
"""


def problems_of(text: str | bytes) -> list[str]:
    with pytest.raises(TaxonomyError) as caught:
        parse_taxonomy(text)
    assert caught.value.code == "taxonomy_invalid"
    assert caught.value.to_dict()["problems"] == caught.value.problems
    return caught.value.problems


def test_parses_yaml_with_hierarchy_and_normalised_keywords() -> None:
    taxonomy = parse_taxonomy(GOOD)
    assert taxonomy.name == "brand team"
    assert taxonomy.names == ("Food & Drink", "Coffee", "Our Product")
    food = taxonomy.get("food & drink")
    assert food is not None and food.keywords == ("foodie", "brunch")
    assert taxonomy.ancestors("coffee") == ("Food & Drink",)
    assert [c.name for c in taxonomy.children("Food & Drink")] == ["Coffee"]
    assert food.texts == ("Food & Drink", "food or a drink", "a plate of food", "coffee")


def test_json_round_trip() -> None:
    taxonomy = parse_taxonomy(GOOD)
    again = parse_taxonomy(json.dumps(taxonomy.to_dict()), "application/json")
    assert again == taxonomy


def test_shorthand_names_are_categories() -> None:
    assert parse_taxonomy("categories: [cats, dogs]").names == ("cats", "dogs")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("categories: []", "non-empty list"),
        ("- just\n- a list", "mapping"),
        ("categories: [a, A]", "duplicate category name 'A'"),
        ("categories: [other]", "reserved"),
        ("categories:\n  - {name: a, parent: nowhere}", "unknown parent 'nowhere'"),
        ("categories:\n  - {name: a, parent: b}\n  - {name: b, parent: a}", "parent cycle"),
        ("categories:\n  - {name: a, parent: a}", "parent cycle: a -> a"),
        ("categories:\n  - {name: a, colour: red}", "unknown keys colour"),
        ("categories:\n  - {name: a, phrases: [1, 2]}", "not a non-empty string"),
        ("categories:\n  - {name: a, signals: [smell]}", "unknown signal 'smell'"),
        ("categories:\n  - {name: ''}", "`name` must be"),
        ("categories:\n  - 42", "must be a mapping"),
        ("categories: [a\n", "not valid YAML"),
        ('{"categories": [', "not valid JSON"),
        ("unexpected: 1\ncategories: [a]", "unknown top-level keys"),
    ],
)
def test_bad_documents_name_their_problem(text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(text)), problems_of(text)


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of("categories:\n  - {name: a, parent: x}\n  - {name: a}\n  - {name: other}")
    assert len(found) == 3


def test_hostile_documents() -> None:
    assert "larger than" in problems_of(b"categories: [" + b"a, " * MAX_BYTES + b"]")[0]
    assert "UTF-8" in problems_of(b"categories: [\xff\xfe]")[0]
    assert "NUL" in problems_of("categories: [a\x00]")[0]
    # YAML aliases cannot smuggle in non-strings or blow up: a list of lists is refused by type
    bomb = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\ncategories:\n  - {name: c, phrases: [*b, *b]}"
    assert problems_of(bomb)
    assert problems_of("categories: !!python/object:os.system [echo]")  # safe_load refuses python tags
    nested = "categories: " + "[" * 5000 + "]" * 5000
    assert problems_of(nested)


def test_too_many_categories() -> None:
    many = {"categories": [f"c{i}" for i in range(501)]}
    assert "at most 500" in problems_of(json.dumps(many))[-1]


def test_taxonomy_object_validates_itself() -> None:
    with pytest.raises(TaxonomyError):
        Taxonomy(name="x", categories=())


def test_words_split_hashtags_and_punctuation() -> None:
    assert words("Brunch time! #Foodie #coffee_lover, see @cafe") == [
        "brunch",
        "time",
        "foodie",
        "coffee_lover",
        "see",
        "cafe",
    ]
