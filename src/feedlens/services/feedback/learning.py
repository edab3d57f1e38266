"""Active learning for a workspace (issue 8): which unlabelled images to label next, and the retraining
loop that trains a candidate as labels arrive and promotes it only when it is measurably better.

Uncertainty comes from a multinomial logistic model refitted, at each request, on the stored visual vectors
(the backbone's pooled features, L2-normalised: what search stores for every image) of the images labelled
so far: the model the simulation measures (docs/feedback.md), current to the last label, and free of any
image decoding. Diversity clusters the same vectors. With fewer than two labelled categories there is
nothing to be uncertain about: the queue is a seeded random sample spread by clustering.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from feedlens.config import Settings
from feedlens.core.errors import CodedError
from feedlens.services.training import WORKSPACE, TrainingService, TrainOptions
from feedlens.storage import categories as cats
from feedlens.storage import embeddings as vectors
from feedlens.storage import learning as cycles_db
from feedlens.storage.database import Database
from feedlens.training.active_learning import Strategy, parse_strategy, select
from feedlens.training.splits import stable_split

log = logging.getLogger(__name__)
VISUAL = "visual"
METRICS = ("macro_f1", "accuracy")
POOL_LIMIT = 20_000  # unlabelled images scored per request (newest first): bounds a request's time


class LearningError(CodedError):
    """An active-learning request that cannot be honoured (bad `n`, metric)."""


def score(metric: str, truth: list[str], predicted: list[str], classes: list[str]) -> float:
    from sklearn.metrics import accuracy_score, f1_score

    if metric == "accuracy":
        return float(accuracy_score(truth, predicted))
    return float(f1_score(truth, predicted, labels=classes, average="macro", zero_division=0))


def decide(candidate: float | None, production: float | None, margin: float) -> tuple[bool, str]:
    """Promote only a measurably better candidate: by at least `margin` over production on the holdout."""
    if production is None:
        return True, "no production model to compare with"
    if candidate is None:
        return False, "the candidate could not be scored: no held-out images neither model trained on"
    if candidate >= production + margin - 1e-12:
        return True, f"better by {candidate - production:+.3f} (margin {margin:.3f})"
    return False, f"not better by the margin: {candidate - production:+.3f} < {margin:.3f}"


class ActiveLearning:
    def __init__(self, database: Database, training: TrainingService, settings: Settings) -> None:
        self.database = database
        self.training = training
        self.settings = settings

    # -- the labelling queue -------------------------------------------------------------------------------
    def next(
        self,
        workspace: int,
        n: int = 20,
        strategy: str = "margin",
        *,
        diversity: bool = True,
        seed: int = 0,
    ) -> dict[str, Any]:
        """The next `n` unlabelled images to label, most informative first, with why each was picked."""
        if not 1 <= n <= 200:
            raise LearningError("invalid_request", f"n must lie in [1, 200], got {n}")
        measure = parse_strategy(strategy)  # ActiveLearningError (bad_argument) for an unknown name
        single, classes, _ = self.training.single_labels(workspace)
        with self.database.session() as session:
            labelled_any = set(cats.workspace_labels(session, workspace))
            pool_ids = [
                i
                for i in cycles_db.image_ids(session, workspace, POOL_LIMIT + len(labelled_any))
                if i not in labelled_any
            ][:POOL_LIMIT]
            stored = vectors.get(session, [*pool_ids, *single], VISUAL)
        pool_ids = [i for i in pool_ids if i in stored]
        progress = {
            "labelled": len(labelled_any),
            "unlabelled": len(pool_ids),
            "per_category": {c: sum(v == c for v in single.values()) for c in classes},
        }
        if not pool_ids:
            return {"strategy": measure.value, "diversity": diversity, "picks": [], "progress": progress}
        x_pool = np.stack([stored[i] for i in pool_ids]).astype(np.float64)
        train = [(key, label) for key, label in sorted(single.items()) if key in stored]
        cold = len({label for _, label in train}) < 2
        if cold or measure is Strategy.RANDOM:
            proba = np.full((len(pool_ids), max(len(classes), 2)), 1.0 / max(len(classes), 2))
            measure_used = Strategy.RANDOM
        else:
            x = np.stack([stored[key] for key, _ in train]).astype(np.float64)
            present = sorted({label for _, label in train}, key=classes.index)
            y = np.array([present.index(label) for _, label in train])
            from feedlens.training.probe import fit_linear_head  # torch loads only with a real fit

            with threadpool_limits(1):  # small fits: threaded BLAS only spins (training/simulation.py)
                w, b = fit_linear_head(x, y, len(present))
            logits = x_pool @ w.T.astype(np.float64) + b
            logits -= logits.max(axis=1, keepdims=True)
            proba = np.exp(logits)
            proba /= proba.sum(axis=1, keepdims=True)
            classes, measure_used = present, measure
        with threadpool_limits(1):
            chosen = select(proba, x_pool, n, measure_used, seed, diversity=diversity)
        picks = []
        for pick in chosen.picks:
            row = proba[pick.index]
            top = np.argsort(-row)[:3]
            picks.append(
                {
                    "image_id": pool_ids[pick.index],
                    "rank": pick.rank,
                    "uncertainty": pick.uncertainty,
                    "cluster": pick.cluster,
                    "predicted": None
                    if measure_used is Strategy.RANDOM
                    else [{"category": classes[int(j)], "probability": float(row[j])} for j in top],
                }
            )
        return {
            "strategy": measure_used.value,
            "requested_strategy": measure.value,
            "cold_start": cold,
            "diversity": chosen.diversity,
            "clusters": chosen.clusters,
            "picks": picks,
            "progress": progress,
        }

    # -- the retraining loop -------------------------------------------------------------------------------
    def cycle(
        self,
        workspace: int,
        options: TrainOptions | None = None,
        *,
        metric: str | None = None,
        margin: float | None = None,
        trigger: str = "command",
        created_by: str = "",
        task: str = "categories",
    ) -> dict[str, Any]:
        """Train a candidate on the current labels (stable split), score it and production on the held-out
        images neither trained on, promote it only if better by the margin; record the cycle."""
        conf = self.settings.learning
        metric = metric or conf.metric
        margin = conf.promote_margin if margin is None else margin
        if metric not in METRICS:
            raise LearningError("invalid_request", f"metric must be one of {', '.join(METRICS)}")
        opts = replace(options or TrainOptions(mode=conf.mode), split="stable")
        registry, server = self.training.registry, self.training.server
        production_id = registry.deployment(workspace, task).production_id
        data, _ = self.training.workspace_dataset(workspace)
        model = self.training.train(workspace, WORKSPACE, opts, task=task, created_by=created_by)
        _, candidate = registry.artifact(workspace, task, model["version"], "torch")
        production = (
            registry.rows(workspace, task, [production_id]).get(production_id) if production_id else None
        )
        # neither model may be scored on an image it trained on; the stable split's one exception (a class
        # with no training item borrows one) can put a test item in either model's training set
        seen = set(candidate.training.get("seen_keys", []))
        seen |= set(production.training.get("seen_keys", [])) if production is not None else set()
        parts = stable_split(data, opts.val_fraction, opts.test_fraction, opts.seed)
        holdout = [i for i in parts.test if i.key not in seen]
        images = server.stored_images(workspace, [i.key for i in holdout])
        holdout = [i for i in holdout if i.key in images]
        truth = [i.label for i in holdout]
        scores: dict[str, float | None] = {"candidate": None, "production": None}
        if holdout:
            pictures = [images[i.key] for i in holdout]
            for name, row in (("candidate", candidate), ("production", production)):
                if row is not None:
                    proba = server.classifier(row).predict_proba(pictures)
                    predicted = [row.classes[int(j)] for j in proba.argmax(axis=1)]
                    scores[name] = score(metric, truth, predicted, list(data.classes))
        promote, reason = decide(scores["candidate"], scores["production"] if production else None, margin)
        if production is not None and scores["production"] is None:  # no holdout: nothing scored either
            promote, reason = False, "no held-out images neither model trained on: label more images"
        if promote:
            registry.promote(workspace, task, candidate.version, by=created_by or "feedback-loop")
            if task == "categories":  # the production model drives the stored images' categories too
                self.training.categories.recategorize(workspace)
        record = {
            "task": task,
            "labels": len(data),
            "holdout": len(holdout),
            "metric": metric,
            "candidate_version": candidate.version,
            "candidate_score": scores["candidate"],
            "production_version": None if production is None else production.version,
            "production_score": scores["production"],
            "promoted": promote,
            "reason": reason,
            "trigger": trigger,
            "created_by": created_by,
        }
        with self.database.session() as session:
            cycles_db.add_cycle(session, workspace, record)
        return record

    def status(self, workspace: int, task: str = "categories") -> dict[str, Any]:
        """Every cycle, the learning curve (metric vs labels) and when the next automatic cycle is due."""
        with self.database.session() as session:
            history = cycles_db.cycles(session, workspace, task)
        labels = len(self.training.single_labels(workspace)[0])
        after = self.settings.learning.retrain_after
        last = history[-1]["labels"] if history else 0
        curve = [
            {
                "labels": c["labels"],
                "candidate": c["candidate_score"],
                "production": c["production_score"],
                "promoted": c["promoted"],
            }
            for c in history
        ]
        return {
            "task": task,
            "labels": labels,
            "cycles": history,
            "curve": curve,
            "retrain_after": after,
            "next_cycle_at": None if after == 0 else last + after,
        }

    def due(self, workspace: int, task: str = "categories") -> bool:
        """True when `retrain_after` new labelled images have arrived since the last cycle."""
        after = self.settings.learning.retrain_after
        if after == 0:
            return False
        with self.database.session() as session:
            history = cycles_db.cycles(session, workspace, task)
        labels = len(self.training.single_labels(workspace)[0])
        return labels - (history[-1]["labels"] if history else 0) >= after
