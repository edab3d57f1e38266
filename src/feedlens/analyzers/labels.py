"""`labels`: EfficientNet-Lite0 ImageNet-1k classes plus WordNet concepts rolled up above them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.core.imageops import center_crop, resize_shorter_side, softmax, to_nchw
from feedlens.core.results import Concept, Label, LabelsResult
from feedlens.runtime.sessions import InferenceSession, open_session

# Verified against the weights (docs/analyzers.md): these weights were trained on (x - 127) / 128 inputs,
# as in TensorFlow's EfficientNet-Lite, not on ImageNet mean/std. The stem BatchNorm's running variance
# matches (x - 127) / 128 inputs and is ~5x off with mean/std normalisation.
INPUT_MEAN = 127.0
INPUT_STD = 128.0
CROP = 224
RESIZE = 256  # crop fraction 0.875, the standard ImageNet evaluation protocol


class LabelsAnalyzer(Analyzer[np.ndarray, LabelsResult]):
    name = "labels"
    code_version = "labels-1"
    artifacts = ("efficientnet-lite0-onnx", "imagenet-hierarchy")
    input_size = RESIZE
    result_type = LabelsResult

    _session: InferenceSession
    _classes: list[dict[str, str]]
    _concepts: list[dict[str, Any]]
    _membership: np.ndarray  # (1000, C) float32, 1 where concept c is above class i
    _depth: np.ndarray  # (C,) int, distance of each concept from WordNet's root

    def _load(self) -> None:
        hierarchy = json.loads(self.store.path("imagenet-hierarchy").read_text())
        self._classes = hierarchy["classes"]
        self._concepts = hierarchy["concepts"]
        membership = np.zeros((len(self._classes), len(self._concepts)), dtype=np.float32)
        for i, above in enumerate(hierarchy["ancestors"]):
            membership[i, above] = 1.0
        # Concepts too near WordNet's root (entity, object, whole ...) say nothing: drop their columns.
        shown = np.array([c["depth"] >= self.settings.labels_concept_min_depth for c in self._concepts])
        self._membership = membership * shown[None, :]
        self._depth = np.array([c["depth"] for c in self._concepts])
        self._session = open_session(
            self.store.path("efficientnet-lite0-onnx"), self.settings.threads_per_worker
        )

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> np.ndarray:
        """RGB images -> float32 (N, 3, 224, 224): shorter side to 256, centre crop, (x - 127) / 128."""
        crops = [
            center_crop(resize_shorter_side(im, RESIZE, Image.Resampling.BILINEAR), CROP) for im in images
        ]
        return to_nchw(crops, INPUT_MEAN, INPUT_STD)

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, 224, 224) -> logits (N, 1000) and pooled features (N, 1280)."""
        logits, features = self._session.run({"input": batch})
        return logits, features

    def postprocess(
        self, outputs: tuple[np.ndarray, np.ndarray], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[LabelsResult]:
        logits, features = outputs
        probs = softmax(logits.astype(np.float64))  # (N, 1000)
        rolled = np.clip(probs @ self._membership, 0.0, 1.0)  # (N, C)
        top_k = self.settings.labels_top_k
        min_score = self.settings.labels_concept_min_score
        results = []
        for p, r, f in zip(probs, rolled, features, strict=True):
            top = np.argsort(-p)[:top_k]
            labels = tuple(
                Label(
                    name=self._classes[i]["name"], wnid=self._classes[i]["wnid"], score=round(float(p[i]), 6)
                )
                for i in top
            )
            # Ties (a whole chain cat -> ... -> animal shares one score) list the more specific first.
            order = sorted(np.flatnonzero(r >= min_score), key=lambda j: (-r[j], -self._depth[j]))
            order = order[: self.settings.labels_max_concepts]
            concepts = tuple(
                Concept(
                    name=self._concepts[j]["name"],
                    wnid=self._concepts[j]["wnid"],
                    score=round(float(r[j]), 6),
                    depth=int(self._concepts[j]["depth"]),
                )
                for j in order
            )
            results.append(LabelsResult(labels=labels, concepts=concepts, features=f, probabilities=p))
        return results
