"""Unit tests of zero-shot features, fusion, roll-up and trained heads, on small constructed inputs.

The real models on real images are exercised in tests/services/test_categories.py and the e2e tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from feedlens.core.results.categories import CategoriesResult, CategoryScore
from feedlens.core.taxonomy import TaxonomyError, parse_taxonomy
from feedlens.runtime.text_encoder import ConceptTable
from feedlens.services.categories.categoriser import Categoriser, TrainedModel
from feedlens.services.categories.fusion import SOURCES, Fusion, raw_scores, zero_shot
from feedlens.services.categories.heads import (
    BLEND_PRIOR,
    DIM,
    CategoryHead,
    TrainingDataError,
    head_features,
    train_head,
)
from feedlens.services.categories.normalise import Moments
from feedlens.services.categories.zero_shot import (
    FEATURES,
    CompiledTaxonomy,
    Evidence,
    contributions,
    features,
    resolve_concepts,
    roll_up,
)

TABLE = ConceptTable(
    wnids=("n1", "n2", "n3", "n4"),
    names=("tabby", "cat", "plant", "plant"),
    is_class=np.array([True, False, False, False]),
    vectors=np.eye(4, 8, dtype=np.float32),
)
TAXONOMY = parse_taxonomy(
    """
categories:
  - {name: animals, concepts: [cat], keywords: [kitten, "cat lover"]}
  - {name: cats, parent: animals, concepts: [n1]}
  - {name: memes, signals: [text], phrases: [a meme]}
  - {name: people, signals: [faces]}
"""
)


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def compiled() -> CompiledTaxonomy:
    # one prototype axis per category: cosines are easy to read off
    protos = tuple(np.eye(4, 4, k, dtype=np.float32)[:1] for k in range(4))
    return CompiledTaxonomy(TAXONOMY, 3, protos, tuple(resolve_concepts(TAXONOMY, TABLE)))


def evidence(**kwargs: object) -> Evidence:
    base: dict[str, object] = {
        "concepts": {},
        "content": None,
        "visual": None,
        "text": "",
        "text_vector": None,
        "caption": "",
        "caption_vector": None,
        "face_score": 0.0,
    }
    base.update(kwargs)
    return Evidence(**base)  # type: ignore[arg-type]


def test_concepts_resolve_by_name_or_id_and_refuse_ambiguity() -> None:
    assert resolve_concepts(TAXONOMY, TABLE)[:2] == [frozenset({"n2"}), frozenset({"n1"})]
    bad = parse_taxonomy("categories:\n  - {name: a, concepts: [plant, unicorn]}")
    with pytest.raises(TaxonomyError) as caught:
        resolve_concepts(bad, TABLE)
    assert "ambiguous" in caught.value.problems[0] and "n3, n4" in caught.value.problems[0]
    assert "unknown concept 'unicorn'" in caught.value.problems[1]


def test_features_read_each_source() -> None:
    column = {name: i for i, name in enumerate(FEATURES)}
    item = evidence(
        concepts={"n2": 0.8, "n1": 0.6},
        content=np.eye(4, dtype=np.float32)[0],
        text="LOL when the cat lover sees this",
        text_vector=np.eye(4, dtype=np.float32)[2],
        caption="my #Kitten",
        caption_vector=None,
        face_score=0.9,
    )
    f = features(compiled(), item)
    assert f.shape == (4, len(FEATURES))
    assert f[0, column["labels"]] == pytest.approx(0.8) and f[1, column["labels"]] == pytest.approx(0.6)
    assert f[0, column["keyword_caption"]] == 1.0  # hashtag #Kitten
    assert f[0, column["keyword_text"]] == 1.0  # two-word keyword in the OCR text
    assert f[3, column["signals"]] == pytest.approx(0.9)  # faces
    assert 0 < f[2, column["signals"]] < 1  # some text read
    # relative cosines sum to zero over categories; an absent caption contributes nothing
    assert f[:, column["visual_rel"]].sum() == pytest.approx(0.0, abs=1e-9)
    assert f[0, column["visual_rel"]] > 0 > f[1, column["visual_rel"]]
    assert not f[:, column["caption"]].any() and not f[:, column["caption_rel"]].any()


def test_keywords_respect_word_boundaries() -> None:
    column = FEATURES.index("keyword_caption")
    assert features(compiled(), evidence(caption="kittens everywhere"))[0, column] == 0.0
    assert features(compiled(), evidence(caption="a concatenation"))[0, column] == 0.0


def test_parents_score_at_least_their_best_child() -> None:
    probs = np.array([[0.2, 0.9, 0.1, 0.0]])
    assert roll_up(TAXONOMY, probs)[0].tolist() == [0.9, 0.9, 0.1, 0.0]


def test_fusion_is_logistic_and_explains_itself() -> None:
    """Raw label evidence becomes a z-score against the library (two images: one with, one without), the
    z-scores log-odds; the lead term is left out here (weight 0)."""
    fusion = Fusion(bias=-1.0, labels=2.0, visual=0.0, lead=0.0)
    items = [evidence(concepts={"n2": 1.0}), evidence()]
    feats = np.stack([features(compiled(), e) for e in items])
    raw = raw_scores(compiled(), items, feats)
    assert raw[:, 0, 0].tolist() == [1.0, 0.0] and np.isnan(raw[:, 1]).all()  # no content vector: NaN
    probs, terms = zero_shot(compiled(), feats, raw, Moments.of(raw), fusion)
    z = terms[0, 0, SOURCES.index("labels")] / 2.0
    assert z > 0 > terms[1, 0, SOURCES.index("labels")]
    assert probs[0, 0] == pytest.approx(1 / (1 + np.exp(1.0 - 2.0 * z)))
    assert contributions(terms[0, 0], SOURCES) == {"labels": round(2.0 * z, 3)}


def test_categoriser_assigns_by_threshold_or_other() -> None:
    fusion = Fusion(bias=-2.0, labels=6.0, visual=0.0, lead=0.0, threshold=0.5)
    categoriser = Categoriser(compiled(), fusion=fusion)
    cat, nothing = categoriser.categorise([evidence(concepts={"n1": 0.9, "n2": 0.9}), evidence()])
    assert cat.assigned == ("animals", "cats") and cat.taxonomy_version == 3
    assert nothing.assigned == ("other",) and nothing.version == "custom@3/zero-shot"
    assert [c.score for c in nothing.categories] == sorted(
        (c.score for c in nothing.categories), reverse=True
    )


def test_result_invariants() -> None:
    with pytest.raises(ValueError, match="sorted"):
        CategoriesResult(
            "t", 1, None, (CategoryScore("a", 0.1, False), CategoryScore("b", 0.9, True)), ("b",)
        )
    with pytest.raises(ValueError, match="exactly"):
        CategoriesResult("t", 1, None, (CategoryScore("a", 0.9, True),), ("other",))
    with pytest.raises(ValueError):
        CategoryScore("a", 1.5, True)


def test_head_learns_separable_labels_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    centres = {"a": rng.normal(size=1280), "b": rng.normal(size=1280)}
    items, labels = [], []
    for name, centre in centres.items():
        for _ in range(6):
            v = centre + 0.3 * rng.normal(size=1280)
            items.append(evidence(visual=(v / np.linalg.norm(v)).astype(np.float32)))
            labels.append({name})
    x = head_features(items)
    assert x.shape == (12, DIM)
    head = train_head(x, labels, ["a", "b", "never labelled"])
    assert head.categories == ("a", "b") and head.positives.tolist() == [6, 6]
    p = head.predict(x)
    assert (p[:6, 0] > 0.5).all() and (p[6:, 0] < 0.5).all()
    again = CategoryHead.from_bytes(head.to_bytes())
    np.testing.assert_allclose(again.predict(x), p)
    assert head.blend_weights().tolist() == pytest.approx([6 / (6 + BLEND_PRIOR)] * 2)
    assert head.blend_weights(prior=6.0).tolist() == pytest.approx([0.5, 0.5])


def test_head_needs_positives_and_negatives() -> None:
    with pytest.raises(TrainingDataError):
        train_head(np.zeros((3, DIM), np.float32), [{"a"}, {"a"}, {"a"}], ["a"])


def test_trained_model_blends_with_zero_shot() -> None:
    head = CategoryHead(
        categories=("memes",),
        coef=np.zeros((1, DIM)),
        intercept=np.array([10.0]),  # the model says "meme" to everything
        positives=np.array([5]),
    )
    fusion = Fusion(bias=-10.0, labels=0.0, visual=0.0, lead=0.0, threshold=0.2)
    categoriser = Categoriser(compiled(), None, TrainedModel(7, head), fusion)
    (result,) = categoriser.categorise([evidence()])
    memes = next(c for c in result.categories if c.name == "memes")
    share = 5 / (5 + BLEND_PRIOR)
    assert memes.trained == pytest.approx(1.0, abs=1e-4) and memes.weight == pytest.approx(share, abs=1e-4)
    assert memes.score == pytest.approx(share, abs=1e-3) and result.model_version == 7
    assert memes.zero_shot == pytest.approx(0.0, abs=1e-3)
    # the threshold moves from the zero-shot model's towards the head's 0.5 by the head's share
    assert memes.threshold == pytest.approx(share * 0.5 + (1 - share) * 0.2, abs=1e-4)
    assert next(c for c in result.categories if c.name == "people").threshold == pytest.approx(0.2)
    # a configured threshold applies to every category
    fixed = Categoriser(compiled(), 0.9, TrainedModel(7, head), fusion).categorise([evidence()])[0]
    assert {c.threshold for c in fixed.categories} == {0.9} and fixed.assigned == ("other",)
    assert result.version == "custom@3/model-7"


def test_zero_shot_counts_as_far_as_the_labels_trust_it() -> None:
    """A registry model (probabilities given per batch) blends by n / (n + prior * trust); its own cut is
    twice the uniform probability of its K categories (at most even odds)."""
    model = TrainedModel(2, None, ("memes", "people"), (5, 0), model_id=9)
    fusion = Fusion(bias=-10.0, labels=0.0, visual=0.0, lead=0.0, threshold=0.2)
    given = np.array([[0.9, 0.1]])
    names = compiled().names
    half_trust = np.where(np.array(names) == "memes", 0.5, 1.0)
    trusted = Categoriser(compiled(), None, model, fusion)
    half = Categoriser(compiled(), None, model, fusion, zero_shot_trust=half_trust)
    chance = Categoriser(compiled(), None, model, fusion, zero_shot_trust=np.zeros(len(names)))
    shares = [c.model_shares()[0] for c in (trusted, half, chance)]
    assert shares == pytest.approx([5 / (5 + BLEND_PRIOR), 5 / (5 + BLEND_PRIOR / 2), 1.0])
    assert chance.model_shares()[1] == 0.0  # no labelled image of a category: the model has no say in it
    memes = [
        next(s for s in c.categorise([evidence()], None, given)[0].categories if s.name == "memes")
        for c in (trusted, chance)
    ]
    assert memes[0].score < memes[1].score == pytest.approx(0.9, abs=1e-3)  # zero-shot said 0 here
    assert memes[1].threshold == pytest.approx(0.5)  # 2 / K = 1 for two categories: capped at even odds
    seven = TrainedModel(2, None, tuple("abcdefg"), (3,) * 7, model_id=9)
    assert seven.natural_cut() == pytest.approx(2 / 7)
