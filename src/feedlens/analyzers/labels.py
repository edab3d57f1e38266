"""`labels`: everyday labels (Cat, Pet, Person, Coffee ...) from an ImageNet-1k classifier (EfficientNet-Lite)
and the faces found, calibrated and ordered specific-first (analyzers/everyday.py); the raw classes and
the WordNet roll-up are kept as details."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.everyday import Calibration, LabelScorer, fingerprint
from feedlens.config import Settings
from feedlens.core.imageops import resize_and_center_crop, softmax, to_nchw
from feedlens.core.results import FacesResult, LabelsResult
from feedlens.core.results.labels import ImageNetClass
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.pose import PoseResult
from feedlens.core.vocabulary import Vocabulary
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.runtime.store import ModelStore

# Verified against the weights (docs/analyzers.md): these weights were trained on (x - 127) / 128 inputs,
# as in TensorFlow's EfficientNet-Lite, not on ImageNet mean/std. The stem BatchNorm's running variance
# matches (x - 127) / 128 inputs and is ~5x off with mean/std normalisation.
INPUT_MEAN = 127.0
INPUT_STD = 128.0
CROP = 224  # Lite0's input (training, Grad-CAM and augmentation use Lite0)
RESIZE = 256  # crop fraction 0.875, the standard ImageNet evaluation protocol
BACKBONE = "efficientnet-lite0-onnx"


@dataclass(frozen=True, slots=True)
class Backbone:
    """An ImageNet classifier in the model store and how it is fed (both take (x - 127) / 128, RGB)."""

    artifact: str
    crop: int
    resize: int  # shorter side before the centre crop


# FEEDLENS_LABELS_BACKBONE -> backbone. Lite2's resize is crop + 32, TensorFlow EfficientNet's protocol.
BACKBONES = {
    "efficientnet-lite0": Backbone(BACKBONE, CROP, RESIZE),
    "efficientnet-lite2": Backbone("efficientnet-lite2-onnx", 260, 292),
}


class LabelsAnalyzer(Analyzer[np.ndarray, LabelsResult]):
    name = "labels"
    code_version = "labels-3"
    artifacts = (BACKBONE, "imagenet-hierarchy")
    input_size = RESIZE
    result_type = LabelsResult
    # Person, Face, Smile from faces; Person, Cup, Dog ... with counts from objects; Standing, Sitting ...
    # from poses: whichever of them run in the same pipeline (alone: classifier labels only)
    uses = ("faces", "objects", "pose")

    _session: InferenceSession
    _classes: list[dict[str, str]]
    _concepts: list[dict[str, Any]]
    _membership: np.ndarray  # (1000, C) float64, 1 where WordNet concept c is above class i
    _scorer: LabelScorer
    _vocabulary: Vocabulary

    def __init__(self, store: ModelStore, settings: Settings) -> None:
        super().__init__(store, settings)
        self.backbone = BACKBONES[settings.labels_backbone]

    @property
    def version(self) -> str:
        # the backbone in use, and the vocabulary and calibration that name the labels
        manifest = self.store.manifest
        parts = [f"{a}@{manifest.get(a).version}" for a in (self.backbone.artifact, "imagenet-hierarchy")]
        return "+".join([self.code_version, *parts, f"vocabulary@{fingerprint()}"])

    def decode_side(self) -> int:
        return self.backbone.resize

    def batch_model(self) -> str:
        return self.backbone.artifact

    def _load(self) -> None:
        hierarchy = json.loads(self.store.path("imagenet-hierarchy").read_text())
        self._classes = hierarchy["classes"]
        self._concepts = hierarchy["concepts"]
        membership = np.zeros((len(self._classes), len(self._concepts)), dtype=np.float32)
        for i, above in enumerate(hierarchy["ancestors"]):
            membership[i, above] = 1.0
        # Concepts too near WordNet's root (entity, object, whole ...) say nothing: drop their columns.
        shown = np.array([c["depth"] >= self.settings.labels_concept_min_depth for c in self._concepts])
        # float64 once here: the roll-up multiplies float64 probabilities, and a float32 matrix would be
        # cast again for every batch
        self._membership = (membership * shown[None, :]).astype(np.float64)
        self._vocabulary = Vocabulary.load()
        calibration = Calibration.load()
        self._scorer = LabelScorer(
            self._vocabulary,
            [c["wnid"] for c in self._classes],
            calibration.for_backbone(self.backbone.artifact),
            calibration.faces,
        )
        self._session = open_session(
            self.store.path(self.backbone.artifact), self.settings.threads_per_worker
        )

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> np.ndarray:
        """RGB images -> float32 (N, 3, C, C): shorter side to the backbone's resize (256 for Lite0), centre
        crop C (224), (x - 127) / 128."""
        size, crop = self.backbone.resize, self.backbone.crop
        crops = [resize_and_center_crop(im, size, crop, Image.Resampling.BILINEAR) for im in images]
        return to_nchw(crops, INPUT_MEAN, INPUT_STD)

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, C, C) -> logits (N, 1000) and pooled features (N, 1280)."""
        logits, features = self._session.run({"input": batch})
        return logits, features

    def postprocess(
        self, outputs: tuple[np.ndarray, np.ndarray], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[LabelsResult]:
        logits, features = outputs
        probs = softmax(logits.astype(np.float64))  # (N, 1000)
        rolled = np.clip(probs @ self._membership, 0.0, 1.0)  # (N, C)
        settings = self.settings
        results = []
        rows = zip(
            probs, rolled, features, upstream["faces"], upstream["objects"], upstream["pose"], strict=True
        )
        for p, r, f, faces, objects, pose in rows:
            scorer = self._scorer
            found = scorer.combine(
                scorer.from_classifier(p),
                scorer.from_faces(faces if isinstance(faces, FacesResult) else None),
                scorer.from_objects(objects if isinstance(objects, ObjectsResult) else None),
                scorer.from_pose(pose if isinstance(pose, PoseResult) else None),
            )
            order = scorer.order(
                found, settings.labels_lead_score, settings.labels_min_score, settings.labels_max
            )
            results.append(
                LabelsResult(
                    labels=scorer.labels(found, order),
                    classes=self._top_classes(p),
                    wordnet=self._wordnet(r),
                    vocabulary=self._vocabulary.version,
                    features=f,
                    probabilities=p,
                )
            )
        return results

    def _top_classes(self, p: np.ndarray) -> tuple[ImageNetClass, ...]:
        top = np.argsort(-p)[: self.settings.labels_top_k]
        return tuple(
            ImageNetClass(self._classes[i]["name"], self._classes[i]["wnid"], round(float(p[i]), 6))
            for i in top
        )

    def _wordnet(self, r: np.ndarray) -> dict[str, float]:
        """WordNet concept id -> roll-up score, for taxonomies (the most specific first on equal scores)."""
        keep = np.flatnonzero(r >= self.settings.labels_concept_min_score)
        depth = [int(self._concepts[j]["depth"]) for j in keep]
        order = sorted(range(len(keep)), key=lambda k: (-r[keep[k]], -depth[k]))
        order = order[: self.settings.labels_max_concepts]
        return {self._concepts[keep[k]]["wnid"]: round(float(r[keep[k]]), 6) for k in order}
