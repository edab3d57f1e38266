"""Serving trained models: the production model answers, an A/B candidate answers a share of images
(`split`) or predicts silently (`shadow`), and every prediction for a stored image is recorded.

Routing is a pure function of (candidate id, image key): the same image always lands in the same arm, so a
re-sent image does not flip between models, and the share converges on the configured one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from feedlens.images import ImageDecoder
from feedlens.services.training.registry import Deployment, ModelRegistry, RegistryError, check_task
from feedlens.storage import registry as reg
from feedlens.storage import repositories as repo
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database
from feedlens.storage.tables import TrainedModel
from feedlens.training.export import OnnxClassifier

log = logging.getLogger(__name__)
CACHED_MODELS = 4  # ONNX sessions kept loaded (production + candidate of a couple of workspaces)
DECODE_SIDE = 256  # the classifiers' preprocessing resizes the shorter side to 256


def routes_to_candidate(key: str, candidate_id: int, share: float) -> bool:
    """True for about `share` of keys, decided by sha256(candidate id, key) read as a number in [0, 1)."""
    if share <= 0.0:
        return False
    digest = hashlib.sha256(f"{candidate_id}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(frozen=True)
class Prediction:
    model_id: int
    version: int
    arm: str  # production or candidate
    served: bool
    probabilities: dict[str, float]

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        ranked = sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:top]
        return {
            "version": self.version,
            "arm": self.arm,
            "served": self.served,
            "label": self.label,
            "confidence": self.probabilities[self.label],
            "scores": [{"category": c, "score": round(p, 6)} for c, p in ranked],
        }


class ModelServer:
    def __init__(
        self, database: Database, blobs: BlobStore, decoder: ImageDecoder, registry: ModelRegistry
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.decoder = decoder
        self.registry = registry
        self._sessions: OrderedDict[str, OnnxClassifier] = OrderedDict()
        self._lock = threading.Lock()

    def classifier(self, row: TrainedModel) -> OnnxClassifier:
        """The ONNX classifier a version serves with (int8 when it was kept, else fp32), loaded once."""
        digest = str(row.artifacts["int8" if row.runtime == "int8" else "onnx"])
        with self._lock:
            found = self._sessions.get(digest)
            if found is not None:
                self._sessions.move_to_end(digest)
                return found
        loaded = OnnxClassifier(self.blobs.path("models", digest), row.classes, threads=1)
        with self._lock:
            self._sessions[digest] = loaded
            while len(self._sessions) > CACHED_MODELS:
                self._sessions.popitem(last=False)
        return loaded

    def _arms(self, workspace: int, task: str) -> tuple[Deployment, dict[int, TrainedModel]]:
        deployment = self.registry.deployment(workspace, task)
        rows = self.registry.rows(workspace, task, (deployment.production_id, deployment.candidate_id))
        return deployment, rows

    def predict(
        self, workspace: int, task: str, images: Sequence[Image.Image], keys: Sequence[str]
    ) -> list[list[Prediction]]:
        """Per image, the predictions of production and (when an A/B test runs) the candidate; the first
        of each list is the one served. Raises `no_production_model` when nothing is promoted."""
        check_task(task)
        deployment, rows = self._arms(workspace, task)
        production = rows.get(deployment.production_id) if deployment.production_id else None
        if production is None:
            raise RegistryError("no_production_model", f"no {task} model is in production in this workspace")
        candidate = rows.get(deployment.candidate_id) if deployment.candidate_id else None
        if deployment.ab_mode == "off":
            candidate = None
        p_prod = self.classifier(production).predict_proba(list(images))
        p_cand = None if candidate is None else self.classifier(candidate).predict_proba(list(images))
        out: list[list[Prediction]] = []
        for i, key in enumerate(keys):
            to_candidate = (
                candidate is not None
                and deployment.ab_mode == "split"
                and routes_to_candidate(key, candidate.id, deployment.ab_share)
            )
            arms = [self._prediction(production, "production", p_prod[i], not to_candidate)]
            if candidate is not None and p_cand is not None:
                arms.append(self._prediction(candidate, "candidate", p_cand[i], to_candidate))
            arms.sort(key=lambda p: not p.served)
            out.append(arms)
        return out

    @staticmethod
    def _prediction(row: TrainedModel, arm: str, proba: np.ndarray, served: bool) -> Prediction:
        scores = {name: float(p) for name, p in zip(row.classes, proba, strict=True)}
        return Prediction(row.id, row.version, arm, served, scores)

    def record(
        self, workspace: int, task: str, image_ids: Sequence[str], predictions: Sequence[list[Prediction]]
    ) -> None:
        rows = [
            {
                "workspace_id": workspace,
                "image_id": image_id,
                "task": task,
                "model_id": p.model_id,
                "arm": p.arm,
                "served": p.served,
                "label": p.label,
                "confidence": p.probabilities[p.label],
            }
            for image_id, arms in zip(image_ids, predictions, strict=True)
            for p in arms
        ]
        with self.database.session() as session:
            reg.record_predictions(session, rows)

    def stored_images(self, workspace: int, image_ids: Sequence[str]) -> dict[str, Image.Image]:
        """Decoded stored copies (shorter side >= 256) of the workspace's images among `image_ids`."""
        with self.database.session() as session:
            blobs = {img.id: img.blob for img in repo.get_images(session, workspace, image_ids)}
        return {  # in the order asked for
            i: self.decoder.decode(self.blobs.path("originals", blobs[i]), min_side=DECODE_SIDE).image
            for i in dict.fromkeys(image_ids)
            if i in blobs
        }

    def predict_stored(
        self, workspace: int, task: str, image_ids: Sequence[str]
    ) -> dict[str, list[Prediction]]:
        """Predict for stored images and record the predictions; unknown ids are left out."""
        images = self.stored_images(workspace, image_ids)
        ids = list(images)
        if not ids:
            return {}
        predictions = self.predict(workspace, task, [images[i] for i in ids], ids)
        self.record(workspace, task, ids, predictions)
        return dict(zip(ids, predictions, strict=True))

    def after_ingest(self, workspace: int, image_ids: list[str]) -> None:
        """Ingest hook: new images get the production (and candidate) prediction recorded, if one is set."""
        if self.registry.deployment(workspace, "categories").production_id is None:
            return
        self.predict_stored(workspace, "categories", image_ids)

    def predictions_of(self, workspace: int, image_id: str) -> list[dict[str, Any]] | None:
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            versions = {m.id: m.version for m in reg.models(session, workspace, "categories")}
            return [
                {
                    "task": p.task,
                    "version": versions.get(p.model_id),
                    "arm": p.arm,
                    "served": p.served,
                    "label": p.label,
                    "confidence": p.confidence,
                    "created_at": p.created_at.isoformat(),
                }
                for p in reg.predictions_of(session, image_id)
            ]
