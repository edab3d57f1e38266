"""The everyday label vocabulary: validation of bad files (all problems at once), and the shipped data's
key mappings (cats, coffee, dogs, COCO), word lookup and the ImageNet roll-up matrix."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feedlens.config import Settings
from feedlens.core.vocabulary import (
    FORBIDDEN_JARGON,
    MAX_DEPTH,
    PERSON_GUESSES,
    UnknownLabelError,
    Vocabulary,
    VocabularyError,
    normalise,
)
from feedlens.runtime.manifest import Manifest
from feedlens.runtime.store import ModelStore

COCO_80 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
CATS = {"n02123045": "tabby", "n02123159": "tiger cat", "n02124075": "Egyptian cat",
        "n02123394": "Persian cat", "n02123597": "Siamese cat"}  # fmt: skip
FAKE_WNIDS = [f"n{i:08d}" for i in range(1000)]


# -- small vocabularies written to tmp_path ------------------------------------------------------------
def small_labels() -> list[dict[str, Any]]:
    return [
        {"id": "animal", "name": "Animal", "aliases": ["animals"], "category": "Animals and Pets"},
        {"id": "pet", "name": "Pet", "parents": ["animal"]},
        {"id": "mammal", "name": "Mammal", "parents": ["animal"]},
        {"id": "cat", "name": "Cat", "aliases": ["kitten", "tabby"], "parents": ["pet", "mammal"]},
        {"id": "dog", "name": "Dog", "aliases": ["puppy"], "parents": ["pet", "mammal"]},
        {"id": "drink", "name": "Drink", "category": "Food and Beverage"},
    ]


def write_vocabulary(
    folder: Path,
    labels: list[dict[str, Any]] | None = None,
    imagenet: dict[str, list[str]] | None = None,
    coco: dict[str, list[str]] | None = None,
    version: str = "1",
) -> Path:
    """JSON is YAML: each file is written as one JSON document."""
    folder.mkdir(parents=True, exist_ok=True)
    documents = {
        "labels.yaml": {
            "version": version,
            "categories": ["Animals and Pets", "Food and Beverage"],
            "labels": small_labels() if labels is None else labels,
        },
        "imagenet.yaml": {"version": "1", "classes": imagenet or {w: ["cat"] for w in FAKE_WNIDS}},
        "coco.yaml": {"version": "1", "classes": coco or {name: ["dog"] for name in COCO_80}},
    }
    for name, doc in documents.items():
        (folder / name).write_text(json.dumps(doc))
    return folder


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(VocabularyError) as caught:
        Vocabulary.load(folder)
    assert caught.value.code == "vocabulary_invalid"
    assert caught.value.to_dict()["problems"] == caught.value.problems
    return caught.value.problems


def test_a_small_valid_vocabulary_loads(tmp_path: Path) -> None:
    vocab = Vocabulary.load(write_vocabulary(tmp_path))
    assert vocab.version == "1" and len(vocab) == 6
    assert vocab.label("cat").category == "Animals and Pets"  # inherited from pet -> animal
    assert vocab.ancestors("cat") == ("pet", "mammal", "animal")
    assert vocab.descendants("animal") == {"pet", "mammal", "cat", "dog"}
    assert (vocab.depth("animal"), vocab.depth("cat")) == (0, 2)
    assert vocab.from_coco("Teddy_Bear") == ("dog",)


def with_label(**entry: Any) -> list[dict[str, Any]]:
    return [*small_labels(), entry]


def deep_chain() -> list[dict[str, Any]]:
    chain = [
        {"id": f"l{i}", "name": f"L{i}", "parents": [f"l{i - 1}" if i else "cat"]} for i in range(MAX_DEPTH)
    ]
    return [*small_labels(), *chain]


def cycle() -> list[dict[str, Any]]:
    return [
        *small_labels(),
        {"id": "a", "name": "A", "parents": ["b"], "category": "Animals and Pets"},
        {"id": "b", "name": "B", "parents": ["a"]},
    ]


ANIMALS = "Animals and Pets"
# case -> (write_vocabulary arguments, a problem that must be reported)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown parent": (
        {"labels": with_label(id="fox", name="Fox", parents=["canid_thing"])},
        "label fox: unknown parent 'canid_thing'",
    ),
    "cycle": ({"labels": cycle()}, "cycle a -> b -> a"),
    "duplicate id": (
        {"labels": with_label(id="cat", name="Kitty Cat", parents=["pet"])},
        "label cat: duplicate id",
    ),
    "ambiguous alias": (
        {"labels": with_label(id="tiger", name="Tiger", aliases=["Tabby"], parents=["mammal"])},
        "'tabby' is claimed by both cat and tiger",
    ),
    "ambiguous plural name": (
        {"labels": with_label(id="animals2", name="Animals", parents=["animal"])},
        "'animals' is claimed by both animal and animals2",
    ),
    "imagenet unknown id": (
        {"imagenet": {w: ["cat"] if i else ["lion"] for i, w in enumerate(FAKE_WNIDS)}},
        "imagenet.yaml: n00000000: unknown label ids ['lion']",
    ),
    "coco unknown id": (
        {"coco": {n: ["dog"] if n != "cow" else ["cow"] for n in COCO_80}},
        "coco.yaml: cow: unknown label ids ['cow']",
    ),
    "forbidden jargon name": (
        {"labels": with_label(id="organism", name="Organism", parents=["animal"])},
        "'organism' is WordNet jargon",
    ),
    "forbidden jargon alias": (
        {"labels": with_label(id="whale", name="Whale", aliases=["placental"], parents=["mammal"])},
        "label whale: 'placental' is WordNet jargon",
    ),
    "gender guess": (
        {"labels": with_label(id="woman", name="Woman", category=ANIMALS)},
        "label woman: 'woman' is a gender or age guess",
    ),
    "missing category": ({"labels": with_label(id="thing", name="Rock")}, "label thing has no category"),
    "unknown category": (
        {"labels": with_label(id="rock", name="Rock", category="Geology")},
        "category 'Geology' is not in `categories`",
    ),
    "not Title Case": (
        {"labels": with_label(id="rock", name="rock", category=ANIMALS)},
        "label rock: `name` must be a Title Case display name",
    ),
    "bad slug": (
        {"labels": with_label(id="Ice Cream", name="Ice Cream", parents=["drink"])},
        "`id` must be a lowercase slug",
    ),
    "too deep": ({"labels": deep_chain()}, f"levels below a root (at most {MAX_DEPTH})"),
    "imagenet not 1000 classes": (
        {"imagenet": {w: ["cat"] for w in FAKE_WNIDS[:999]}},
        "needs exactly 1000 distinct WordNet ids like n02123045, found 999",
    ),
    "imagenet keys not wnids": (
        {"imagenet": {("tabby" if i == 5 else w): ["cat"] for i, w in enumerate(FAKE_WNIDS)}},
        "(not wnids: ['tabby'])",
    ),
    "coco missing class": (
        {"coco": {n: ["dog"] for n in COCO_80[:-1]}},
        "coco.yaml: needs the 80 COCO class names, found 79",
    ),
    "version mismatch": ({"version": "2"}, "the files disagree on `version`"),
}


@pytest.mark.parametrize("case", CASES)
def test_each_problem_is_detected(tmp_path: Path, case: str) -> None:
    arguments, expected = CASES[case]
    problems = problems_of(write_vocabulary(tmp_path, **arguments))
    assert any(expected in p for p in problems), problems


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    labels = [
        *small_labels(),
        {"id": "fox", "name": "Fox", "parents": ["nowhere"]},
        {"id": "cat", "name": "Cat Again", "parents": ["pet"]},
        {"id": "object", "name": "Object", "category": "Animals and Pets"},
    ]
    problems = problems_of(write_vocabulary(tmp_path, labels, imagenet={"n00000001": ["ghost"]}))
    assert len(problems) >= 5, problems
    text = "\n".join(problems)
    for part in ("unknown parent 'nowhere'", "label cat: duplicate id", "'object' is WordNet jargon",
                 "unknown label ids ['ghost']", "found 1"):  # fmt: skip
        assert part in text


def test_duplicate_yaml_keys_missing_files_and_bad_yaml_are_problems(tmp_path: Path) -> None:
    folder = write_vocabulary(tmp_path / "dup")
    lines = [f"  {w}: [cat]" for w in FAKE_WNIDS] + ["  n00000007: [dog]"]
    (folder / "imagenet.yaml").write_text('version: "1"\nclasses:\n' + "\n".join(lines) + "\n")
    assert any("imagenet.yaml: duplicate key 'n00000007' (line 1003)" in p for p in problems_of(folder))

    folder = write_vocabulary(tmp_path / "missing")
    (folder / "coco.yaml").unlink()
    (folder / "labels.yaml").write_text("labels: [unclosed\n")
    problems = problems_of(folder)
    assert any(p.startswith("coco.yaml: cannot read") for p in problems), problems
    assert any(p.startswith("labels.yaml: invalid YAML") for p in problems), problems


# -- the shipped vocabulary -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.load()


def test_shipped_vocabulary_loads_fast(vocab: Vocabulary) -> None:
    assert 600 <= len(vocab) <= 1500
    assert vocab.version == "1" and 25 <= len(vocab.categories) <= 40
    best = min(_timed(Vocabulary.load) for _ in range(3))
    assert best < 0.5, f"loading took {best:.3f}s"  # ~60 ms on a busy 2-core machine; 0.5 s is a regression


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_no_jargon_or_person_guess_anywhere(vocab: Vocabulary) -> None:
    for label in vocab:
        for word in (label.name, *label.aliases):
            assert normalise(word) not in FORBIDDEN_JARGON | PERSON_GUESSES, (label.id, word)
        assert label.category in vocab.categories
        assert vocab.depth(label.id) <= MAX_DEPTH
    assert "person" in vocab and "face" in vocab and "man" not in vocab and "child" not in vocab


@pytest.mark.parametrize("wnid", CATS)
def test_cat_breeds_are_cats(vocab: Vocabulary, wnid: str) -> None:
    assert vocab.from_imagenet(wnid) == ("cat",)
    assert {"pet", "mammal", "animal"} <= set(vocab.ancestors("cat"))
    assert vocab.find(CATS[wnid]) == ("cat",)  # the old class name still finds cats


def test_espresso_is_coffee_is_a_drink(vocab: Vocabulary) -> None:
    assert vocab.from_imagenet("n07920052") == ("espresso",)
    assert vocab.ancestors("espresso") == ("coffee", "drink")
    assert vocab.label("espresso").category == "Food and Beverage"


def test_every_dog_breed_is_a_dog(vocab: Vocabulary) -> None:
    breeds = vocab.imagenet_wnids[151:269]  # ImageNet classes 151-268 are the dog breeds
    assert (breeds[0], breeds[-1]) == ("n02085620", "n02113978")  # Chihuahua ... Mexican hairless
    for wnid in breeds:
        (own,) = vocab.from_imagenet(wnid)
        assert own == "dog" or "dog" in vocab.ancestors(own), (wnid, own)
    assert vocab.ancestors("labrador") == ("dog", "pet", "mammal", "animal")
    assert vocab.find("kuvasz") == ("dog",) and vocab.find("Golden Retrievers") == ("golden_retriever",)


def test_key_mappings(vocab: Vocabulary) -> None:
    assert vocab.from_imagenet("n02860847") == ("bobsled",)
    assert vocab.from_imagenet("n03773504") == vocab.from_imagenet("n04008634") == ("rocket",)
    assert vocab.from_imagenet("n02669723") == ("graduation_gown",)
    assert "graduation" in vocab.ancestors("graduation_gown")
    assert vocab.ancestors("sports_car") == ("car", "vehicle")
    assert vocab.label("bobsled").category == "Sports"


def test_coco_classes(vocab: Vocabulary) -> None:
    assert vocab.from_coco("person") == ("person",)
    assert vocab.from_coco("tv") == ("television",) and vocab.from_coco("hair drier") == ("hair_dryer",)
    for name in COCO_80:
        assert vocab.from_coco(name)
    with pytest.raises(UnknownLabelError):
        vocab.from_coco("unicorn")


def test_imagenet_wnids_match_the_classifier(vocab: Vocabulary, settings: Settings) -> None:
    assert vocab.imagenet_wnids == tuple(sorted(vocab.imagenet_wnids))  # ImageNet's class order
    path = ModelStore(settings.models_dir, Manifest.load(), {}).artifact_path("imagenet-hierarchy")
    if not path.is_file():
        pytest.skip("imagenet-hierarchy is not pulled (feedlens store pull)")
    classes = json.loads(path.read_text())["classes"]
    assert vocab.imagenet_wnids == tuple(c["wnid"] for c in classes)


def test_find_is_case_and_plural_insensitive(vocab: Vocabulary) -> None:
    assert vocab.find("cats")[0] == "cat"
    assert vocab.find("Tiger Cat") == ("cat",)
    assert vocab.find("  ICE-cream ") == ("ice_cream",)
    assert vocab.find("sports cars") == ("sports_car",)
    assert vocab.find("puppies") == ("dog",) and vocab.find("geese") == ("goose",)
    assert vocab.find("glasses")[0] == "glasses"  # exact match first, then the singular's label
    assert vocab.find("") == () and vocab.find("qwertyuiop") == ()


def test_descendants(vocab: Vocabulary) -> None:
    animals = vocab.descendants("animal")
    assert {"cat", "dog", "labrador", "bird", "eagle"} <= animals and "animal" not in animals
    assert "person" not in animals and "car" not in animals
    assert {"espresso", "coffee", "beer"} <= vocab.descendants("drink")


def test_imagenet_matrix_rolls_each_class_up_once(vocab: Vocabulary) -> None:
    wnids = vocab.imagenet_wnids
    columns, matrix = vocab.imagenet_matrix(wnids)
    assert matrix.shape == (1000, len(columns)) and matrix.dtype == np.float32
    assert len(set(columns)) == len(columns)
    col = {label_id: j for j, label_id in enumerate(columns)}
    for i, wnid in enumerate(wnids):
        expected = {x for own in vocab.from_imagenet(wnid) for x in (own, *vocab.ancestors(own))}
        assert {columns[j] for j in np.flatnonzero(matrix[i])} == expected, wnid
    tabby = wnids.index("n02123045")
    assert matrix[tabby, [col["cat"], col["pet"], col["mammal"], col["animal"]]].tolist() == [1, 1, 1, 1]
    probs = np.zeros((1, 1000), dtype=np.float32)
    probs[0, [wnids.index(w) for w in CATS]] = 0.2  # five cat classes, 0.2 each
    rolled = probs @ matrix
    assert rolled[0, col["cat"]] == pytest.approx(1.0) and rolled[0, col["animal"]] == pytest.approx(1.0)
    assert rolled[0, col["drink"]] == 0.0


def test_unknown_lookups_are_typed_key_errors(vocab: Vocabulary) -> None:
    lookups: list[Callable[[], object]] = [
        lambda: vocab.label("nope"),
        lambda: vocab.ancestors("nope"),
        lambda: vocab.from_imagenet("n1"),
    ]
    for lookup in lookups:
        with pytest.raises(UnknownLabelError) as caught:
            lookup()
        assert isinstance(caught.value, KeyError) and caught.value.code == "unknown_label"
    with pytest.raises(UnknownLabelError):
        vocab.imagenet_matrix(["n00000000"])
