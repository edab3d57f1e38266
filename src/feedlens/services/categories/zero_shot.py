"""Zero-shot categorisation: how well an image fits each category before anyone has labelled anything.

Each (image, category) pair gets a feature vector from every source of evidence:

    labels    roll-up of the classifier's probabilities into the category's WordNet concepts (max)
    signals   the most confident face (`faces`), or the amount of text read (`text`)
    visual    cosine of the image's content vector (ConSE, sentence space) with the category's phrases
    text      the same cosine for the embedding of the image's OCR text
    caption   the same cosine for the embedding of its posts' captions and hashtags
    keywords  a category keyword or hashtag found in the caption / in the image's text

Cosines enter twice: as they are (less a constant) and relative to the image's mean over the taxonomy's
categories, because some phrases sit near everything in sentence space and the relative form cancels
that. A logistic model maps features to a calibrated probability; its weights were fitted on the
development split of the evaluation set (benchmarks/categories_quality.py, docs/categories.md) and are
the same for every category, so a category a team adds is scored like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from feedlens.core.results import FacesResult, LabelsResult
from feedlens.core.results.base import AnalyzerResult
from feedlens.core.results.text import TextResult
from feedlens.core.taxonomy import Taxonomy, TaxonomyError, normalise_keyword, words
from feedlens.runtime.text_encoder import ConceptTable, TextEncoder

FEATURES = (
    "labels",
    "signals",
    "visual",
    "visual_rel",
    "text",
    "text_rel",
    "caption",
    "caption_rel",
    "keyword_caption",
    "keyword_text",
)
# Which evidence source each feature belongs to, for the per-source contributions shown to users.
SOURCE_OF = {
    "labels": "labels",
    "signals": "signals",
    "visual": "visual",
    "visual_rel": "visual",
    "text": "text",
    "text_rel": "text",
    "caption": "caption",
    "caption_rel": "caption",
    "keyword_caption": "keywords",
    "keyword_text": "keywords",
}
COSINE_CENTER = 0.25  # typical MiniLM cosine of unrelated short texts: absolute cosines are centred on it
TEXT_CHARS_FULL = 40  # letters read for the `text` signal to count fully (a meme's caption line or two)


@dataclass(frozen=True, slots=True)
class FusionWeights:
    """Logistic model over FEATURES: p = sigmoid(bias + sum_f weight_f * x_f); `threshold` is the score
    at which it assigns a category (the macro-F1 best on the development split)."""

    bias: float
    weights: Mapping[str, float]
    threshold: float = 0.5

    def vector(self) -> np.ndarray:
        return np.array([self.weights.get(f, 0.0) for f in FEATURES], dtype=np.float64)


# Fitted by `benchmarks/categories_quality.py --fit` on the development split (docs/categories.md), except
# where that set has no evidence: its images show no faces and no lines of text, so `signals`, `text*` and
# `keyword_text` keep set values: a clear signal counts like a strong label roll-up, and the image's own text
# like its caption at half weight (OCR is noisier and memes often say something else than they show).
FUSION = FusionWeights(
    bias=-3.688,
    weights={
        "labels": 5.295,
        "signals": 3.0,
        "visual": 3.627,
        "visual_rel": -2.795,  # collinear with `visual` once labels are in: the pair nets a small term
        "text": -1.789,
        "text_rel": 8.398,
        "caption": -3.577,
        "caption_rel": 16.795,
        "keyword_caption": 6.216,
        "keyword_text": 3.108,
    },
    threshold=0.25,
)
# Categories defined without WordNet concepts (most of a team's own) are scored by weights fitted without
# the labels source: with it, the fit leans on labels and leaves phrases too little say. Fitted alike.
FUSION_PHRASES = FusionWeights(
    bias=-3.206,
    weights={
        "signals": 3.0,
        "visual": 2.419,
        "visual_rel": 6.902,
        "text": -1.992,
        "text_rel": 8.612,
        "caption": -3.983,
        "caption_rel": 17.223,
        "keyword_caption": 5.244,
        "keyword_text": 2.622,
    },
    threshold=0.15,
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What categorisation reads of one image, all of it stored, so ingest and recategorize agree.

    `concepts` maps WordNet ids of the labels result's classes and concepts to their scores. Vectors are
    unit float32: `content` (384,), `visual` (1280,), `text_vector`/`caption_vector` (384,) or None when
    the image has no text / no caption.
    """

    concepts: Mapping[str, float]
    content: np.ndarray | None
    visual: np.ndarray | None
    text: str
    text_vector: np.ndarray | None
    caption: str
    caption_vector: np.ndarray | None
    face_score: float

    @classmethod
    def from_results(
        cls,
        results: Mapping[str, AnalyzerResult | None],
        *,
        content: np.ndarray | None,
        visual: np.ndarray | None,
        caption: str = "",
        text_vector: np.ndarray | None = None,
        caption_vector: np.ndarray | None = None,
    ) -> Evidence:
        """From an image's analyzer results (typed; absent or None ones count as nothing found)."""
        concepts: dict[str, float] = {}
        labels = results.get("labels")
        if isinstance(labels, LabelsResult):
            for wnid, score in [(c.wnid, c.score) for c in labels.classes] + list(labels.wordnet.items()):
                concepts[wnid] = max(concepts.get(wnid, 0.0), score)
        faces = results.get("faces")
        text_result = results.get("text")
        text = text_result.full_text if isinstance(text_result, TextResult) else ""
        return cls(
            concepts=concepts,
            content=content,
            visual=visual,
            text=text,
            text_vector=text_vector if text.strip() else None,
            caption=caption,
            caption_vector=caption_vector if caption.strip() else None,
            face_score=faces.faces[0].confidence if isinstance(faces, FacesResult) and faces.faces else 0.0,
        )


@dataclass(frozen=True)
class CompiledTaxonomy:
    """A taxonomy ready to score against: phrase embeddings and resolved WordNet ids per category."""

    taxonomy: Taxonomy
    version: int
    prototypes: tuple[np.ndarray, ...]  # per category (P_c, 384), unit rows: name, description, phrases
    concepts: tuple[frozenset[str], ...]  # per category, WordNet ids

    @property
    def names(self) -> tuple[str, ...]:
        return self.taxonomy.names


def resolve_concepts(taxonomy: Taxonomy, table: ConceptTable) -> list[frozenset[str]]:
    """Each category's concepts as WordNet ids; an unknown or ambiguous name is a TaxonomyError."""
    by_name: dict[str, set[str]] = {}
    for wnid, name in zip(table.wnids, table.names, strict=True):
        by_name.setdefault(name.casefold(), set()).add(wnid)
    known = set(table.wnids)
    problems: list[str] = []
    out = []
    for category in taxonomy.categories:
        ids: set[str] = set()
        for concept in category.concepts:
            if concept in known:
                ids.add(concept)
                continue
            matches = by_name.get(concept.casefold(), set())
            if len(matches) == 1:
                ids |= matches
            elif matches:
                choices = ", ".join(sorted(matches))
                problems.append(f"{category.name}: concept {concept!r} is ambiguous, use one of {choices}")
            else:
                problems.append(
                    f"{category.name}: unknown concept {concept!r} (WordNet ids or names of the ImageNet "
                    "classes and the concepts above them; `feedlens taxonomy concepts` lists them)"
                )
        out.append(frozenset(ids))
    if problems:
        raise TaxonomyError(problems)
    return out


def compile_taxonomy(
    taxonomy: Taxonomy, version: int, encoder: TextEncoder, table: ConceptTable
) -> CompiledTaxonomy:
    concepts = resolve_concepts(taxonomy, table)
    texts = [c.texts for c in taxonomy.categories]
    flat = [t for group in texts for t in group]
    encoded = encoder.encode(flat) if flat else np.zeros((0, encoder.dim), np.float32)
    prototypes, start = [], 0
    for group in texts:
        prototypes.append(encoded[start : start + len(group)])
        start += len(group)
    return CompiledTaxonomy(taxonomy, version, tuple(prototypes), tuple(concepts))


def _max_cosine(vector: np.ndarray | None, prototypes: Sequence[np.ndarray]) -> np.ndarray:
    """(C,) best cosine of `vector` with each category's phrases; NaN where there is no vector."""
    if vector is None:
        return np.full(len(prototypes), np.nan)
    return np.array([float((p @ vector).max()) if len(p) else np.nan for p in prototypes])


def _keyword_hits(text: str, keywords: Sequence[str]) -> float:
    if not text or not keywords:
        return 0.0
    tokens = words(text)
    joined = f" {' '.join(tokens)} "
    found = set(tokens)
    return float(
        any(k in found or (" " in k and f" {k} " in joined) for k in map(normalise_keyword, keywords))
    )


def features(compiled: CompiledTaxonomy, evidence: Evidence) -> np.ndarray:
    """(C, len(FEATURES)) float64 feature matrix of one image against every category."""
    categories = compiled.taxonomy.categories
    n = len(categories)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    column = {name: i for i, name in enumerate(FEATURES)}
    letters = sum(ch.isalnum() for ch in evidence.text)
    for c, category in enumerate(categories):
        out[c, column["labels"]] = max(
            (evidence.concepts.get(w, 0.0) for w in compiled.concepts[c]), default=0.0
        )
        signal = 0.0
        if "faces" in category.signals:
            signal = max(signal, evidence.face_score)
        if "text" in category.signals:
            signal = max(signal, min(1.0, letters / TEXT_CHARS_FULL))
        out[c, column["signals"]] = signal
        out[c, column["keyword_caption"]] = _keyword_hits(evidence.caption, category.keywords)
        out[c, column["keyword_text"]] = _keyword_hits(evidence.text, category.keywords)
    for name, vector in (
        ("visual", evidence.content),
        ("text", evidence.text_vector),
        ("caption", evidence.caption_vector),
    ):
        cosines = _max_cosine(vector, compiled.prototypes)
        present = np.isfinite(cosines)
        if present.any():
            # absent sources contribute 0 (no evidence either way), never a made-up cosine
            out[present, column[name]] = cosines[present] - COSINE_CENTER
            out[present, column[f"{name}_rel"]] = cosines[present] - cosines[present].mean()
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))
    return out


def fusions(compiled: CompiledTaxonomy) -> list[FusionWeights]:
    """The fusion model of each category: with or without the labels source."""
    return [FUSION if concepts else FUSION_PHRASES for concepts in compiled.concepts]


def zero_shot(
    compiled: CompiledTaxonomy, feats: np.ndarray, models: Sequence[FusionWeights] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, C, F) -> calibrated probabilities (N, C) and per-feature log-odds terms (N, C, F).
    `models`: one fusion model per category (default: `fusions(compiled)`). A parent category scores at
    least as high as its best child."""
    models = fusions(compiled) if models is None else models
    weights = np.stack([m.vector() for m in models])  # (C, F)
    bias = np.array([m.bias for m in models])  # (C,)
    terms = feats * weights[None, :, :]
    probs = sigmoid(bias[None, :] + terms.sum(axis=-1))
    return roll_up(compiled.taxonomy, probs), terms


def roll_up(taxonomy: Taxonomy, probs: np.ndarray) -> np.ndarray:
    """(N, C): each parent's score raised to its best descendant's (children before parents)."""
    out = probs.copy()
    index = {c.name: i for i, c in enumerate(taxonomy.categories)}
    # deepest first, so a grandchild's score reaches the grandparent through the parent
    order = sorted(taxonomy.categories, key=lambda c: -len(taxonomy.ancestors(c.name)))
    for category in order:
        for parent in taxonomy.ancestors(category.name)[:1]:
            p, c = index[parent], index[category.name]
            out[:, p] = np.maximum(out[:, p], out[:, c])
    return out


def contributions(terms: np.ndarray) -> dict[str, float]:
    """(F,) log-odds terms of one (image, category) -> per-source sums, rounded, zero sources left out."""
    sums: dict[str, float] = {}
    for name, value in zip(FEATURES, terms, strict=True):
        source = SOURCE_OF[name]
        sums[source] = sums.get(source, 0.0) + float(value)
    return {k: round(v, 3) for k, v in sums.items() if abs(v) >= 5e-4}
