"""From the classifier's 1000 ImageNet probabilities and the faces found to everyday labels: scores that are
calibrated, ancestors at least as likely as what implies them, and a display order that leads with the most
specific confident label. Pure numpy over the vocabulary (core/vocabulary.py): no model is touched here.

Classifier labels. A label's raw score is the summed probability of the ImageNet classes under it
(`probs @ M`, M from `Vocabulary.imagenet_matrix`). Sums over wide labels (Animal covers 400 classes) are
high even on pictures of nothing in particular, so the raw sum is not a probability of being right. A
logistic calibration maps five features to one: logit(raw sum), log(number of classes under the label),
logit(the largest single class under it), and how sure the classifier is of the image at all (its largest
class, the entropy of its distribution); it is fitted on labelled photos by
`benchmarks/labels_calibration.py` and its coefficients ship in data/vocabulary/calibration.json.

People labels. Person, Face, Smile, Portrait, Selfie, Group and Crowd come from the `faces` result: the face
detector's confidence, calibrated the same way (one feature), and the face count and sizes.

Objects and poses, when those analyzers ran. Each object box names a label (Person, Cup, Dog ...) with its
calibrated score and a count of boxes; each pose gives Person (scored as the pose detector's measured
precision at its floor) and the activities its keypoints show (Standing, Sitting, Lying Down, Arms Raised,
Running or Jumping). Person's count is the most people any source saw.

Consistency and order. Every label's score is raised to at least its best descendant's (a smiling face is
a face, a cat is an animal). Display order: labels at or above `lead` (default 0.5) come first: the most
specific ones (no confident label under them) by score, then their parents, each once every confident
label under it has been shown; labels between `min_score` and `lead` follow by score.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feedlens.core.results import FacesResult
from feedlens.core.results.labels import Label
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.pose import PoseResult
from feedlens.core.vocabulary import FILES, Vocabulary

log = logging.getLogger(__name__)
VOCABULARY_DIR = Path(__file__).resolve().parents[1] / "data" / "vocabulary"
CALIBRATION_FILE = VOCABULARY_DIR / "calibration.json"
EPS = 1e-6
RAW_FLOOR = 0.005  # labels whose summed probability is below this are not scored at all
PORTRAIT_AREA = 0.05  # a face covering 5% of the picture or more: a portrait (head and shoulders)
SELFIE_AREA = 0.15  # one face covering 15% or more: a selfie-style close-up
GROUP_FACES = 3
CROWD_FACES = 10
HAPPY = "happy"
# A pose person at the default floor (0.3) was a real person on 22 of 26 corpus images (the misses: statues,
# an ape, a penguin; docs/benchmarks.md "Pose"), so Person from poses alone scores this, and no activity
# scores above it.
POSE_PERSON_PRECISION = 0.85
ACTIVITY_LABELS = {
    "standing": "standing",
    "sitting": "sitting",
    "lying_down": "lying_down",
    "arms_raised": "arms_raised",
    "running_jumping": "running_jumping",
}
ACTIVITY_MIN_SCORE = 0.5  # a cue holds from here (analyzers/pose_rules.py)


@functools.cache
def fingerprint() -> str:
    """A short hash of the vocabulary files and the calibration: part of the labels analyzer's version, so
    a changed mapping or calibration marks stored labels stale (`feedlens reanalyze --analyzer labels`)."""
    digest = hashlib.sha256()
    for name in (*FILES, CALIBRATION_FILE.name):
        digest.update((VOCABULARY_DIR / name).read_bytes())
    return digest.hexdigest()[:10]


def logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.asarray(np.log(q / (1 - q)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


@dataclass(frozen=True, slots=True)
class Logistic:
    """p = sigmoid(weights . features + bias)."""

    weights: tuple[float, ...]
    bias: float

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """(..., F) features -> (...) probabilities."""
        return sigmoid(features @ np.asarray(self.weights, dtype=np.float64) + self.bias)


IDENTITY = Logistic((1.0, 0.0, 0.0, 0.0, 0.0), 0.0)  # sigmoid(logit(raw sum)): the raw sum itself


@dataclass(frozen=True, slots=True)
class Calibration:
    """Calibration of classifier labels (per backbone artifact) and of face-based labels."""

    classifier: Mapping[str, Logistic]
    faces: Logistic
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def for_backbone(self, artifact: str) -> Logistic:
        """The classifier calibration fitted for `artifact`; uncalibrated raw sums (with a warning) for a
        backbone nobody fitted yet (`benchmarks/labels_calibration.py --backbone ... --write` fits one)."""
        found = self.classifier.get(artifact)
        if found is None:
            log.warning("no label calibration for %s: scores are raw roll-up sums", artifact)
            return IDENTITY
        return found

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        data = json.loads(path.read_text())
        return cls(
            classifier={
                name: Logistic(tuple(c["weights"]), float(c["bias"]))
                for name, c in data["classifier"].items()
            },
            faces=Logistic(tuple(data["faces"]["weights"]), float(data["faces"]["bias"])),
            provenance=data.get("provenance", {}),
        )


@dataclass(frozen=True)
class Membership:
    """A (1000, L) 0/1 class-to-label matrix with what every image's roll-up needs precomputed: a float64
    copy (no cast per image), each label's classes as one sorted index (a sparse max instead of a dense
    (1000, L) product: ~1% of its entries are 1) and log(classes under each label)."""

    dense: np.ndarray  # (1000, L) float64
    classes: np.ndarray  # (nnz,) class index of each (label, class) pair, grouped by label
    starts: np.ndarray  # (L,) where each label's group begins in `classes`
    breadth: np.ndarray  # (L,) log(classes under the label)

    @classmethod
    def of(cls, membership: np.ndarray) -> Membership:
        labels, classes = np.nonzero(np.asarray(membership).T)  # row-major: grouped by label
        counts = np.bincount(labels, minlength=membership.shape[1])
        if (counts == 0).any():  # imagenet_matrix keeps only labels some class reaches
            raise ValueError("every label needs at least one class under it")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        breadth = np.log(counts.astype(np.float64))
        return cls(np.asarray(membership, dtype=np.float64), classes, starts, breadth)


def classifier_features(
    probabilities: np.ndarray, membership: np.ndarray | Membership
) -> tuple[np.ndarray, np.ndarray]:
    """(1000,) probabilities, (1000, L) membership -> raw sums (L,) and features (L, 5): logit(raw sum),
    log(classes under the label), logit(largest class under it), and two of the whole image, the same for
    every label: logit(the largest class of all) and the distribution's entropy / log(1000). A flat
    distribution (a pattern, a galaxy field) sums to a fair share under any wide label without being one."""
    m = membership if isinstance(membership, Membership) else Membership.of(membership)
    raw = np.clip(probabilities @ m.dense, 0.0, 1.0)
    top = np.maximum.reduceat(probabilities[m.classes], m.starts)
    p = np.clip(probabilities, EPS, 1.0)
    entropy = float(-(p * np.log(p)).sum() / np.log(len(p)))
    image = np.broadcast_to([float(logit(p.max())), entropy], (len(raw), 2))
    return raw, np.column_stack([logit(raw), m.breadth, logit(top), image])


@dataclass
class Found:
    """One label's evidence while scoring an image."""

    score: float
    sources: set[str] = field(default_factory=set)
    count: int | None = None


def _most(a: int | None, b: int | None) -> int | None:
    """The larger of two counts, either of which may be unknown."""
    return b if a is None else a if b is None else max(a, b)


class LabelScorer:
    """Everyday labels of one image from its class probabilities and faces (see the module docstring)."""

    def __init__(
        self, vocabulary: Vocabulary, wnids: Sequence[str], classifier: Logistic, faces: Logistic
    ) -> None:
        self.vocabulary = vocabulary
        self.columns, matrix = vocabulary.imagenet_matrix(wnids)  # (1000, L)
        self.membership = Membership.of(matrix)
        self.classifier = classifier
        self.faces = faces
        self._ancestors = {label.id: vocabulary.ancestors(label.id) for label in vocabulary}

    # -- evidence ---------------------------------------------------------------------------------------
    def from_classifier(self, probabilities: np.ndarray) -> dict[str, Found]:
        raw, features = classifier_features(np.asarray(probabilities, dtype=np.float64), self.membership)
        scored = np.flatnonzero(raw >= RAW_FLOOR)
        calibrated = self.classifier(features[scored])
        return {
            self.columns[j]: Found(float(p), {"classifier"}) for j, p in zip(scored, calibrated, strict=True)
        }

    def from_faces(self, faces: FacesResult | None) -> dict[str, Found]:
        if faces is None or not faces.faces:
            return {}
        confidence = self.faces(logit(np.array([[f.confidence] for f in faces.faces])))  # (n,)
        found: dict[str, Found] = {}

        def add(label_id: str, score: float, count: int | None = None) -> None:
            if label_id in self.vocabulary:
                found[label_id] = Found(float(score), {"faces"}, count)

        best = float(confidence.max())
        add("face", best, faces.count)
        add("person", best, faces.count)
        happy = [float(p) * f.emotions.get(HAPPY, 0.0) for p, f in zip(confidence, faces.faces, strict=True)]
        if max(happy) > 0:
            add("smile", max(happy))
        largest = max(f.box.area for f in faces.faces)
        if largest >= PORTRAIT_AREA and faces.count <= 2:
            add("portrait", best)
        if largest >= SELFIE_AREA and faces.count == 1:
            add("selfie", best)
        ranked = sorted((float(p) for p in confidence), reverse=True)
        if faces.count >= GROUP_FACES:
            add("group", ranked[GROUP_FACES - 1])  # as sure as the third face
        if faces.count >= CROWD_FACES:
            add("crowd", ranked[CROWD_FACES - 1])
        return found

    def from_objects(self, objects: ObjectsResult | None) -> dict[str, Found]:
        """Each object's label at its best calibrated score, counted by boxes."""
        if objects is None:
            return {}
        found: dict[str, Found] = {}
        for label_id, count in objects.counts().items():
            if label_id in self.vocabulary:
                best = max(o.score for o in objects.objects if o.id == label_id)
                found[label_id] = Found(best, {"objects"}, count)
        return found

    def from_pose(self, pose: PoseResult | None) -> dict[str, Found]:
        """Person (counted) and the activities the people's keypoints show."""
        if pose is None or not pose.count:
            return {}
        found = {"person": Found(POSE_PERSON_PRECISION, {"pose"}, pose.count)}
        for cue, score in pose.activities().items():
            label_id = ACTIVITY_LABELS.get(cue, "")
            if label_id in self.vocabulary and score >= ACTIVITY_MIN_SCORE:
                found[label_id] = Found(min(score, POSE_PERSON_PRECISION), {"pose"})
        return found

    # -- combining and ordering -------------------------------------------------------------------------
    def combine(self, *evidence: Mapping[str, Found]) -> dict[str, Found]:
        """The best score per label over all sources, then each ancestor raised to its best descendant."""
        merged: dict[str, Found] = {}
        for source in evidence:
            for label_id, found in source.items():
                kept = merged.setdefault(label_id, Found(0.0))
                kept.score = max(kept.score, found.score)
                kept.sources |= found.sources
                kept.count = _most(kept.count, found.count)
        for label_id, found in list(merged.items()):
            for ancestor in self._ancestors[label_id]:
                kept = merged.setdefault(ancestor, Found(0.0))
                kept.score = max(kept.score, found.score)
                kept.sources |= found.sources
        return merged

    def order(self, found: Mapping[str, Found], lead: float, min_score: float, limit: int) -> list[str]:
        """Display order (module docstring): confident labels first, each only once every confident label
        under it has been shown, best score first (equal scores: the more specific), then the rest by
        score. So the most specific confident label leads, the other subjects' labels come next ("Cat,
        Person"), and parents follow what they sum up ("... Mammal, Pet, Animal")."""
        remaining = {i for i, f in found.items() if f.score >= lead}
        below = {i: {d for d in remaining if d != i and i in self._ancestors[d]} for i in remaining}
        heads = sorted((i for i in remaining if not below[i]), key=lambda i: self._rank(found, i))
        out = list(heads)
        remaining -= set(heads)
        while remaining:
            ready = [i for i in remaining if below[i] <= set(out)]
            best = min(ready, key=lambda i: self._rank(found, i))
            out.append(best)
            remaining.discard(best)
        rest = sorted(
            (i for i, f in found.items() if min_score <= f.score < lead), key=lambda i: self._rank(found, i)
        )
        return [*out, *rest][:limit]

    def _rank(self, found: Mapping[str, Found], label_id: str) -> tuple[float, int, str]:
        """Sort key: higher score first; on equal scores the deeper (more specific) label; then the id."""
        return -round(found[label_id].score, 4), -len(self._ancestors[label_id]), label_id

    def labels(self, found: Mapping[str, Found], order: Iterable[str]) -> tuple[Label, ...]:
        out = []
        for label_id in order:
            entry = self.vocabulary.label(label_id)
            evidence = found[label_id]
            out.append(
                Label(
                    id=label_id,
                    name=entry.name,
                    score=round(min(1.0, evidence.score), 4),
                    parents=self._ancestors[label_id],
                    category=entry.category,
                    sources=tuple(sorted(evidence.sources)),
                    count=evidence.count,
                )
            )
        return tuple(out)
