"""Zero-shot categorisation, image side: what categorisation reads of an image, and the per-category
features of one image that need nothing but the image itself.

Each (image, category) pair gets a feature vector from every source of evidence:

    labels    roll-up of the classifier's probabilities into the category's WordNet `concepts` (max)
    signals   the most confident face (`faces`), or the amount of text read (`text`)
    visual    cosine of the image's content vector (ConSE, sentence space) with the category's phrases
    text      the same cosine for the embedding of the image's OCR text
    caption   the same cosine for the embedding of its posts' captions and hashtags
    keywords  a category keyword or hashtag found in the caption / in the image's text

Cosines enter as they are (less a constant) and relative to the image's mean over the taxonomy's
categories. How these and the everyday-label bridge (bridge.py) become a score, read against the
workspace's own distribution, is fusion.py's part; docs/categories.md explains the whole method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from feedlens.core.results import FacesResult, LabelsResult
from feedlens.core.results.base import AnalyzerResult
from feedlens.core.results.text import TextResult
from feedlens.core.taxonomy import Taxonomy, TaxonomyError, normalise_keyword, words
from feedlens.runtime.text_encoder import ConceptTable, TextEncoder
from feedlens.services.categories.normalise import Prior

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
class Evidence:
    """What categorisation reads of one image, all of it stored, so ingest and recategorize agree.

    `concepts` maps WordNet ids of the labels result's classes and concepts to their scores; `labels` the
    everyday labels' ids (classifier, faces, objects, poses) to theirs. Vectors are unit float32: `content`
    (384,), `visual` (1280,), `text_vector`/`caption_vector` (384,) or None when the image has no text / no
    caption.
    """

    concepts: Mapping[str, float]
    content: np.ndarray | None
    visual: np.ndarray | None
    text: str
    text_vector: np.ndarray | None
    caption: str
    caption_vector: np.ndarray | None
    face_score: float
    labels: Mapping[str, float] = field(default_factory=dict)

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
        everyday: dict[str, float] = {}
        labels = results.get("labels")
        if isinstance(labels, LabelsResult):
            for wnid, score in [(c.wnid, c.score) for c in labels.classes] + list(labels.wordnet.items()):
                concepts[wnid] = max(concepts.get(wnid, 0.0), score)
            everyday = {label.id: label.score for label in labels.labels}
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
            labels=everyday,
        )


@dataclass(frozen=True)
class CompiledTaxonomy:
    """A taxonomy ready to score against: phrase embeddings and resolved WordNet ids per category, the
    everyday-label bridge's weights (bridge.py) and the prior of its scores (reference.py). Without a
    bridge (`bridge` None) only the WordNet roll-up speaks for labels; without a prior, a flat one."""

    taxonomy: Taxonomy
    version: int
    prototypes: tuple[np.ndarray, ...]  # per category (P_c, 384), unit rows: name, description, phrases
    concepts: tuple[frozenset[str], ...]  # per category, WordNet ids
    bridge: np.ndarray | None = None  # (C, L) weight of each everyday label for each category
    label_index: Mapping[str, int] = field(default_factory=dict)  # everyday label id -> column of `bridge`
    prior: Prior | None = None  # (K, C) mean and sd of the raw score components (fusion.COMPONENTS)
    joint: bool = False  # texts and content vectors come from one image-text model (CLIP), not ConSE

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
    """Phrase embeddings and WordNet ids only (TaxonomyCompiler adds the bridge and the prior)."""
    concepts = resolve_concepts(taxonomy, table)
    texts = [c.texts for c in taxonomy.categories]
    flat = [t for group in texts for t in group]
    encoded = encoder.encode(flat) if flat else np.zeros((0, encoder.dim), np.float32)
    prototypes, start = [], 0
    for group in texts:
        prototypes.append(encoded[start : start + len(group)])
        start += len(group)
    return CompiledTaxonomy(taxonomy, version, tuple(prototypes), tuple(concepts))


def max_cosine(vector: np.ndarray | None, prototypes: Sequence[np.ndarray]) -> np.ndarray:
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
        cosines = max_cosine(vector, compiled.prototypes)
        present = np.isfinite(cosines)
        if present.any():
            # absent sources contribute 0 (no evidence either way), never a made-up cosine
            out[present, column[name]] = cosines[present] - COSINE_CENTER
            out[present, column[f"{name}_rel"]] = cosines[present] - cosines[present].mean()
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))
    return out


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


def contributions(terms: np.ndarray, sources: Sequence[str]) -> dict[str, float]:
    """(S,) log-odds terms of one (image, category), one per source in `sources` -> {source: term},
    rounded, zero sources left out."""
    return {k: round(float(v), 3) for k, v in zip(sources, terms, strict=True) if abs(v) >= 5e-4}
