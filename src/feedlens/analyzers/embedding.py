"""Image embeddings for search: the backbone's pooled features (visual) and a sentence-space vector of
what the image shows (content), built without any image-text model.

Content is ConSE (Norouzi et al. 2014, "Zero-shot learning by convex combination of semantic
embeddings"): the MiniLM embeddings of the predicted ImageNet class names weighted by their
probabilities, plus those of the rolled-up WordNet concepts weighted by their scores, plus the embedding
of the image's OCR text when it has any:

    content = normalise( w_c * sum_i p_i e(class_i) / sum_i p_i      (top `CLASSES` classes)
                       + w_k * sum_j r_j e(concept_j) / sum_j r_j    (the labels result's concepts)
                       + w_t * e(ocr text) )

Captions and hashtags are fused in by the search service, where posts are known. docs/search.md shows
what each part adds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.core.results import EmbeddingResult, LabelsResult
from feedlens.core.results.text import TextResult
from feedlens.runtime.text_encoder import TextEncoder, concept_table

CLASSES = 10  # classes past the tenth carry almost no probability mass and only add noise
WEIGHTS = {"classes": 1.0, "concepts": 0.5, "text": 0.5}  # text 0.5 > 1.0 by MRR (docs/search.md)


def normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


@dataclass(frozen=True, slots=True)
class _Inputs:
    probabilities: np.ndarray  # (1000,)
    features: np.ndarray  # (1280,)
    concepts: tuple[tuple[str, float], ...]  # (wnid, score)
    text: str


class EmbeddingAnalyzer(Analyzer[list[_Inputs], EmbeddingResult]):
    name = "embedding"
    code_version = "embedding-2"
    # The backbone is loaded by `labels`; it is listed so that a new backbone version changes ours.
    artifacts = (
        "efficientnet-lite0-onnx",
        "imagenet-hierarchy",
        "minilm-l6-v2-onnx",
        "concept-phrase-embeddings",
    )
    input_size = 0  # works on upstream results, not pixels
    result_type = EmbeddingResult
    depends_on = ("labels", "text")
    weights: ClassVar[dict[str, float]] = WEIGHTS  # benchmarks override per instance for the ablation

    def _load(self) -> None:
        self._encoder = TextEncoder(self.store, threads=self.settings.threads_per_worker)
        self._encoder.load()
        table = concept_table(self.store)
        self._row = {wnid: i for i, wnid in enumerate(table.wnids)}
        self._vectors = table.vectors  # (N, 384), unit rows
        hierarchy = json.loads(self.store.path("imagenet-hierarchy").read_text())
        # (1000, 384): row i is ImageNet class i, the order of the backbone's outputs
        self._class_vectors = self._vectors[[self._row[c["wnid"]] for c in hierarchy["classes"]]]

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[_Inputs]:
        out = []
        for labels, text in zip(upstream["labels"], upstream["text"], strict=True):
            assert isinstance(labels, LabelsResult) and isinstance(text, TextResult)
            if labels.features is None or labels.probabilities is None:
                raise ValueError("labels result carries no features: the backbone model is too old")
            out.append(
                _Inputs(
                    probabilities=np.asarray(labels.probabilities, dtype=np.float64),
                    features=np.asarray(labels.features, dtype=np.float32),
                    concepts=tuple((c.wnid, c.score) for c in labels.concepts),
                    text=text.full_text.strip(),
                )
            )
        return out

    def _forward(self, batch: list[_Inputs]) -> tuple[list[_Inputs], np.ndarray]:
        """Encode the OCR texts present in the batch: (inputs, (n_texts, 384))."""
        texts = [item.text for item in batch if item.text]
        encoded = self._encoder.encode(texts) if texts else np.zeros((0, self._vectors.shape[1]), np.float32)
        return batch, encoded

    def postprocess(
        self, outputs: tuple[list[_Inputs], np.ndarray], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[EmbeddingResult]:
        batch, encoded = outputs
        results = []
        text_index = 0
        for item in batch:
            parts: dict[str, np.ndarray] = {}
            top = np.argsort(-item.probabilities)[:CLASSES]
            weights = item.probabilities[top]
            parts["classes"] = (weights / weights.sum()) @ self._class_vectors[top]
            known = [(w, s) for w, s in item.concepts if w in self._row]
            if known:
                scores = np.array([s for _, s in known])
                parts["concepts"] = (scores / scores.sum()) @ self._vectors[[self._row[w] for w, _ in known]]
            if item.text:
                parts["text"] = encoded[text_index]
                text_index += 1
            weighted = [self.weights.get(k, 0.0) * normalise(v) for k, v in parts.items()]
            content = normalise(np.sum(weighted, axis=0))
            results.append(
                EmbeddingResult(visual=normalise(item.features), content=content, parts=tuple(parts))
            )
        return results
