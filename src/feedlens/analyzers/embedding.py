"""Image embeddings for search: the backbone's pooled features (visual) and a sentence-space vector of
what the image shows (content), built without any image-text model.

Content is ConSE (Norouzi et al. 2014, "Zero-shot learning by convex combination of semantic
embeddings"): the MiniLM embeddings of the predicted ImageNet class names weighted by their
probabilities, plus those of the rolled-up WordNet concepts weighted by their scores, plus those of the
image's everyday labels (Person, Smile, Coffee: what people search for) weighted by their scores, plus the
embedding of the image's OCR text when it has any:

    content = normalise( w_c * sum_i p_i e(class_i) / sum_i p_i      (top `CLASSES` classes)
                       + w_k * sum_j r_j e(concept_j) / sum_j r_j    (the labels result's WordNet roll-up)
                       + w_l * sum_l s_l e(label_l) / sum_l s_l      (everyday labels scored >= LABEL_MIN)
                       + w_t * e(ocr text) )

Captions and hashtags are fused in by the search service, where posts are known. docs/search.md shows
what each part adds.

With a CLIP or SigLIP model configured (FEEDLENS_CLIP__*, runtime/clip.py), content is instead the image
tower's embedding of the image, and every text is embedded by its text tower; `visual` stays the backbone's
features either way (similar images, duplicates, clusters).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.everyday import fingerprint
from feedlens.analyzers.labels import BACKBONES
from feedlens.core.files import write_atomic
from feedlens.core.results import EmbeddingResult, LabelsResult
from feedlens.core.results.text import TextResult
from feedlens.core.vocabulary import Vocabulary
from feedlens.runtime.clip import ClipModels, clip_models
from feedlens.runtime.text_encoder import MiniLMEncoder, concept_table

CLASSES = 10  # classes past the tenth carry almost no probability mass and only add noise
LABEL_MIN = 0.3  # everyday labels below this are more often wrong than right (docs/benchmarks.md)
WEIGHTS = {"classes": 1.0, "concepts": 0.5, "labels": 0.5, "text": 0.5}  # text 0.5 > 1.0 by MRR


def normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


@dataclass(frozen=True, slots=True)
class _Inputs:
    probabilities: np.ndarray  # (1000,)
    features: np.ndarray  # (1280,)
    concepts: tuple[tuple[str, float], ...]  # (wnid, score)
    labels: tuple[tuple[str, float], ...]  # (everyday label id, score)
    text: str
    pixels: np.ndarray | None = None  # (3, S, S), CLIP's input, only with a CLIP model


class EmbeddingAnalyzer(Analyzer[list[_Inputs], EmbeddingResult]):
    name = "embedding"
    code_version = "embedding-4"
    # The backbone is loaded by `labels`; it is listed so that a new backbone version changes ours.
    artifacts = (
        "efficientnet-lite0-onnx",
        "imagenet-hierarchy",
        "minilm-l6-v2-onnx",
        "concept-phrase-embeddings",
    )
    input_size = 0  # works on upstream results, not pixels
    result_type = EmbeddingResult
    depends_on = ("labels",)
    # OCR text joins the content vector when the text analyzer runs in the same pipeline; asking for search
    # vectors never starts OCR (`feedlens reanalyze -a text` refreshes the vectors with the text it reads)
    reads = ("text",)
    weights: ClassVar[dict[str, float]] = WEIGHTS  # benchmarks override per instance for the ablation

    @property
    def version(self) -> str:
        # the labels backbone in use makes the visual vector, whichever FEEDLENS_LABELS_BACKBONE says
        backbone = BACKBONES[self.settings.labels_backbone].artifact
        manifest = self.store.manifest
        clip = self._clip_models()
        if clip is not None:  # content comes from the CLIP model; visual still from the backbone
            return f"{self.code_version}+{backbone}@{manifest.get(backbone).version}+{clip.version}"
        names = (backbone, *self.artifacts[1:])
        parts = [f"{a}@{manifest.get(a).version}" for a in names]
        # label names are part of the content vector
        return "+".join([self.code_version, *parts, f"vocabulary@{fingerprint()}"])

    def _clip_models(self) -> ClipModels | None:
        """The configured CLIP model (shared with the text encoder); None: the sentence-space stand-in."""
        if not self.settings.clip.enabled:
            return None
        return clip_models(self.settings.clip, self.settings.threads_per_worker)

    def decode_side(self) -> int:
        return self.settings.clip.image_size if self.settings.clip.enabled else self.input_size

    def _load(self) -> None:
        self._clip = self._clip_models()
        if self._clip is not None:
            self._clip.load()  # nothing of the stand-in is needed
            return
        self._encoder = MiniLMEncoder(self.store, threads=self.settings.threads_per_worker)
        self._encoder.load()
        table = concept_table(self.store)
        self._row = {wnid: i for i, wnid in enumerate(table.wnids)}
        self._vectors = table.vectors  # (N, 384), unit rows
        hierarchy = json.loads(self.store.path("imagenet-hierarchy").read_text())
        # (1000, 384): row i is ImageNet class i, the order of the backbone's outputs
        self._class_vectors = self._vectors[[self._row[c["wnid"]] for c in hierarchy["classes"]]]
        vocabulary = Vocabulary.load()
        self._label_row = {label.id: i for i, label in enumerate(vocabulary)}
        self._label_vectors = self._label_table([label.name for label in vocabulary])

    def _label_table(self, names: list[str]) -> np.ndarray:
        """(L, 384) embeddings of the everyday label names, computed once per vocabulary and encoder and
        kept beside the models (about a second to make, milliseconds to read)."""
        path = self.store.root / ".cache" / f"label-vectors-{fingerprint()}-{self._encoder.version}.npy"
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(names), self._vectors.shape[1]):
                return np.asarray(vectors, dtype=np.float32)
        except (OSError, ValueError):
            pass  # not made yet on this machine, or damaged: made again
        vectors = self._encoder.encode(names, batch_size=128)
        write_atomic(path, lambda f: np.save(f, vectors, allow_pickle=False))
        return vectors

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[_Inputs]:
        out = []
        for image, labels, text in zip(images, upstream["labels"], upstream["text"], strict=True):
            assert isinstance(labels, LabelsResult)
            if labels.features is None or labels.probabilities is None:
                raise ValueError("labels result carries no features: the backbone model is too old")
            out.append(
                _Inputs(
                    probabilities=np.asarray(labels.probabilities, dtype=np.float64),
                    features=np.asarray(labels.features, dtype=np.float32),
                    concepts=tuple(labels.wordnet.items()),
                    labels=tuple((lab.id, lab.score) for lab in labels.labels if lab.score >= LABEL_MIN),
                    text=text.full_text.strip() if isinstance(text, TextResult) else "",
                    pixels=self._clip.pixels(image) if self._clip is not None else None,
                )
            )
        return out

    def _forward(self, batch: list[_Inputs]) -> tuple[list[_Inputs], np.ndarray]:
        """Encode the OCR texts present in the batch: (inputs, (n_texts, 384)); with CLIP, the images:
        (inputs, (n, D))."""
        if self._clip is not None:
            return batch, self._clip.encode_pixels(
                np.stack([i.pixels for i in batch if i.pixels is not None])
            )
        texts = [item.text for item in batch if item.text]
        encoded = self._encoder.encode(texts) if texts else np.zeros((0, self._vectors.shape[1]), np.float32)
        return batch, encoded

    def postprocess(
        self, outputs: tuple[list[_Inputs], np.ndarray], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[EmbeddingResult]:
        batch, encoded = outputs
        if self._clip is not None:
            return [
                EmbeddingResult(visual=normalise(item.features), content=content, parts=("image",))
                for item, content in zip(batch, encoded, strict=True)
            ]
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
            labels = [(i, s) for i, s in item.labels if i in self._label_row]
            if labels:
                scores = np.array([s for _, s in labels])
                rows = [self._label_row[i] for i, _ in labels]
                parts["labels"] = (scores / scores.sum()) @ self._label_vectors[rows]
            if item.text:
                parts["text"] = encoded[text_index]
                text_index += 1
            weighted = [self.weights.get(k, 0.0) * normalise(v) for k, v in parts.items()]
            content = normalise(np.sum(weighted, axis=0))
            results.append(
                EmbeddingResult(visual=normalise(item.features), content=content, parts=tuple(parts))
            )
        return results
