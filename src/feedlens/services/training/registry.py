"""The model registry: versions, the `production` alias per workspace and task, promote/rollback, A/B state
and live accuracy from people's labels.

Rollback walks a stack replayed from the deployment events: every `promote` pushes the promoted model, every
`rollback` pops one, so a second rollback goes one further back (not back and forth between two models).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from feedlens.core.errors import CodedError
from feedlens.storage import registry as reg
from feedlens.storage.database import Database
from feedlens.storage.tables import ModelDeployment, TrainedModel
from feedlens.training.advice import training_notes

TASKS = ("categories",)  # what a trained model predicts; one task so far: a workspace's categories
AB_MODES = ("off", "split", "shadow")


class RegistryError(CodedError):
    """A registry request that cannot be done; `code` says why (stable strings, HTTP status in the API)."""


def check_task(task: str) -> str:
    if task not in TASKS:
        raise RegistryError("unknown_task", f"unknown task {task!r} (tasks: {', '.join(TASKS)})")
    return task


@dataclass(frozen=True)
class Deployment:
    """A plain copy of a deployment: which model ids serve a task and how the candidate is tried."""

    production_id: int | None
    candidate_id: int | None
    ab_mode: str
    ab_share: float

    @classmethod
    def of(cls, row: ModelDeployment | None) -> Deployment:
        if row is None:
            return cls(None, None, "off", 0.0)
        return cls(row.production_id, row.candidate_id, row.ab_mode, row.ab_share)


def describe(row: TrainedModel, deployment: Deployment | None = None) -> dict[str, Any]:
    """A model version as the CLI and API show it."""
    aliases = []
    if deployment is not None and deployment.production_id == row.id:
        aliases.append("production")
    if deployment is not None and deployment.candidate_id == row.id and deployment.ab_mode != "off":
        aliases.append("candidate")
    return {
        "version": row.version,
        "task": row.task,
        "mode": row.mode,
        "aliases": aliases,
        "parent": row.parent_id,
        "dataset_hash": row.dataset_hash,
        "dataset": row.provenance,
        "classes": row.classes,
        "params": row.params,
        "metrics": row.metrics,
        "runtime": row.runtime,
        "compression": row.training.get("compression"),
        # class balance (recorded at training) and what the figures mean (early stop, too few test images)
        "warnings": [*row.training.get("warnings", []), *training_notes(row.training, row.metrics or {})],
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


def production_stack(events: Iterable[Any]) -> list[int]:
    """Model ids that were production, oldest first, after replaying promote (push) / rollback (pop)."""
    stack: list[int] = []
    for event in events:
        if event.action == "promote" and event.model_id is not None:
            stack.append(event.model_id)
        elif event.action == "rollback" and stack:
            stack.pop()
    return stack


def live_accuracy(rows: Iterable[tuple[Any, ...]]) -> dict[int, dict[str, Any]]:
    """Per model id: how its recorded predictions fare against people's labels.

    A prediction is right when the image is labelled with the predicted category, wrong when the image is
    labelled *not* that category or labelled with other categories only; images whose labels say nothing
    about the predicted category are not counted. Returns n, correct, accuracy (None when n == 0), for all
    predictions and for the served ones, plus the image ids counted (for paired comparisons).
    """
    per: dict[tuple[int, str], dict[str, Any]] = {}
    for model_id, image_id, label, served, category, positive in rows:
        entry = per.setdefault(
            (model_id, image_id), {"label": label, "served": served, "pos": set(), "neg": set()}
        )
        (entry["pos"] if positive else entry["neg"]).add(category)
    out: dict[int, dict[str, Any]] = {}
    for (model_id, image_id), e in per.items():
        stats = out.setdefault(
            model_id, {"n": 0, "correct": 0, "served_n": 0, "served_correct": 0, "images": {}}
        )
        if e["label"] in e["pos"]:
            right = True
        elif e["label"] in e["neg"] or e["pos"]:
            right = False
        else:
            continue
        stats["n"] += 1
        stats["correct"] += right
        stats["images"][image_id] = right
        if e["served"]:
            stats["served_n"] += 1
            stats["served_correct"] += right
    for stats in out.values():
        stats["accuracy"] = stats["correct"] / stats["n"] if stats["n"] else None
        stats["served_accuracy"] = stats["served_correct"] / stats["served_n"] if stats["served_n"] else None
    return out


class ModelRegistry:
    def __init__(self, database: Database) -> None:
        self.database = database

    # -- reading -------------------------------------------------------------------------------------------
    def deployment(self, workspace: int, task: str) -> Deployment:
        with self.database.session() as session:
            return Deployment.of(reg.deployment(session, workspace, check_task(task)))

    def next_version(self, workspace: int, task: str) -> int:
        with self.database.session() as session:
            return reg.next_version(session, workspace, check_task(task))

    def versions(self, workspace: int, task: str) -> list[dict[str, Any]]:
        with self.database.session() as session:
            deployment = Deployment.of(reg.deployment(session, workspace, check_task(task)))
            return [describe(m, deployment) for m in reg.models(session, workspace, task)]

    def _get(self, session: Session, workspace: int, task: str, version: int) -> TrainedModel:
        row = reg.model(session, workspace, check_task(task), version)
        if row is None:
            raise RegistryError("model_not_found", f"no {task} model version {version} in this workspace")
        return row

    def get(self, workspace: int, task: str, version: int) -> dict[str, Any]:
        with self.database.session() as session:
            row = self._get(session, workspace, task, version)
            return {
                **describe(row, Deployment.of(reg.deployment(session, workspace, task))),
                "training": row.training,
                "artifacts": row.artifacts,
            }

    def artifact(self, workspace: int, task: str, version: int, name: str) -> tuple[str, TrainedModel]:
        """The blob digest of one artifact of a version, and the row."""
        with self.database.session() as session:
            row = self._get(session, workspace, task, version)
            session.expunge(row)
        digest = row.artifacts.get(name)
        if digest is None:
            raise RegistryError("artifact_not_found", f"model version {version} has no {name} artifact")
        return str(digest), row

    def rows(self, workspace: int, task: str, model_ids: Iterable[int | None]) -> dict[int, TrainedModel]:
        wanted = {m for m in model_ids if m is not None}
        with self.database.session() as session:
            out = {}
            for model_id in wanted:
                row = reg.model_by_id(session, model_id)
                if row is not None and row.workspace_id == workspace and row.task == task:
                    session.expunge(row)
                    out[model_id] = row
            return out

    def history(self, workspace: int, task: str) -> list[dict[str, Any]]:
        with self.database.session() as session:
            versions = {m.id: m.version for m in reg.models(session, workspace, check_task(task))}
            return [
                {
                    "action": e.action,
                    "version": versions.get(e.model_id) if e.model_id is not None else None,
                    "detail": e.detail,
                    "created_by": e.created_by,
                    "created_at": e.created_at.isoformat(),
                }
                for e in reg.events(session, workspace, task)
            ]

    # -- writing -------------------------------------------------------------------------------------------
    def register(self, workspace: int, task: str, **fields: Any) -> dict[str, Any]:
        """Store a new version (number allocated here); `parent_id` defaults to the current production."""
        with self.database.session() as session:
            deployment = reg.deployment_for_update(session, workspace, check_task(task))
            fields.setdefault("parent_id", deployment.production_id)
            row = reg.add_model(
                session,
                workspace_id=workspace,
                task=task,
                version=reg.next_version(session, workspace, task),
                **fields,
            )
            return describe(row, Deployment.of(deployment))

    def promote(self, workspace: int, task: str, version: int, by: str = "") -> dict[str, Any]:
        """Make `version` production. Promoting the A/B candidate ends the test."""
        with self.database.session() as session:
            row = self._get(session, workspace, task, version)
            deployment = reg.deployment_for_update(session, workspace, task)
            previous = deployment.production_id
            if previous == row.id:
                raise RegistryError("already_production", f"version {version} is already production")
            deployment.production_id = row.id
            if deployment.candidate_id == row.id:
                deployment.candidate_id, deployment.ab_mode, deployment.ab_share = None, "off", 0.0
            reg.add_event(session, workspace, task, "promote", row.id, by, {"previous": previous})
            return describe(row, Deployment.of(deployment))

    def rollback(self, workspace: int, task: str, by: str = "") -> dict[str, Any]:
        """Production goes back to the model it was before the last promotion still in force."""
        with self.database.session() as session:
            deployment = reg.deployment_for_update(session, workspace, check_task(task))
            stack = production_stack(reg.events(session, workspace, task))
            if len(stack) < 2:
                raise RegistryError("nothing_to_roll_back", "production has no earlier model to go back to")
            back_to = reg.model_by_id(session, stack[-2])
            if back_to is None:  # the earlier model was deleted with its workspace data
                raise RegistryError("nothing_to_roll_back", "the earlier production model no longer exists")
            current = deployment.production_id
            deployment.production_id = back_to.id
            if deployment.candidate_id == back_to.id:  # production cannot be tested against itself
                deployment.candidate_id, deployment.ab_mode, deployment.ab_share = None, "off", 0.0
            reg.add_event(session, workspace, task, "rollback", current, by, {"to": back_to.version})
            return describe(back_to, Deployment.of(deployment))

    def set_ab(
        self, workspace: int, task: str, candidate: int | None, mode: str, share: float, by: str = ""
    ) -> Deployment:
        """Start, change or stop (`mode="off"`) an A/B test of `candidate` (a version) against production."""
        if mode not in AB_MODES:
            raise RegistryError("invalid_ab", f"mode must be one of {', '.join(AB_MODES)}, got {mode!r}")
        if not (isinstance(share, int | float) and math.isfinite(share) and 0.0 <= share <= 1.0):
            raise RegistryError("invalid_ab", f"share must lie in [0, 1], got {share!r}")
        with self.database.session() as session:
            deployment = reg.deployment_for_update(session, workspace, check_task(task))
            if mode == "off":
                deployment.candidate_id, deployment.ab_mode, deployment.ab_share = None, "off", 0.0
                reg.add_event(session, workspace, task, "ab", None, by, {"mode": "off"})
                return Deployment.of(deployment)
            if candidate is None:
                raise RegistryError("invalid_ab", "an A/B test needs a candidate version")
            row = self._get(session, workspace, task, candidate)
            if deployment.production_id is None:
                raise RegistryError("no_production_model", "promote a model to production before an A/B test")
            if row.id == deployment.production_id:
                raise RegistryError(
                    "invalid_ab", f"version {candidate} is production; pick another candidate"
                )
            production = reg.model_by_id(session, deployment.production_id)
            if production is not None and list(row.classes) != list(production.classes):
                raise RegistryError(
                    "classes_mismatch",
                    "the candidate predicts other classes than production; promote it instead",
                )
            deployment.candidate_id, deployment.ab_mode = row.id, mode
            deployment.ab_share = float(share) if mode == "split" else 0.0
            detail = {"mode": mode, "share": deployment.ab_share}
            reg.add_event(session, workspace, task, "ab", row.id, by, detail)
            return Deployment.of(deployment)

    def ab_status(self, workspace: int, task: str) -> dict[str, Any]:
        """The deployment, recorded prediction counts and live accuracy of production and candidate, overall
        and on the images both predicted (the fair comparison)."""
        with self.database.session() as session:
            deployment = Deployment.of(reg.deployment(session, workspace, check_task(task)))
            arms = {"production": deployment.production_id, "candidate": deployment.candidate_id}
            ids = [m for m in arms.values() if m is not None]
            versions = {m.id: m.version for m in reg.models(session, workspace, task)}
            live = live_accuracy(reg.live_rows(session, workspace, ids)) if ids else {}
            counts = reg.prediction_counts(session, workspace, ids) if ids else {}
        both = None
        if deployment.production_id in live and deployment.candidate_id in live:
            a, b = live[deployment.production_id]["images"], live[deployment.candidate_id]["images"]
            common = sorted(set(a) & set(b))
            both = {
                "images": len(common),
                "production_accuracy": sum(a[i] for i in common) / len(common) if common else None,
                "candidate_accuracy": sum(b[i] for i in common) / len(common) if common else None,
            }
        out: dict[str, Any] = {"task": task, "mode": deployment.ab_mode, "share": deployment.ab_share}
        for arm, model_id in arms.items():
            if model_id is None:
                out[arm] = None
                continue
            stats = {k: v for k, v in live.get(model_id, {}).items() if k != "images"}
            out[arm] = {
                "version": versions.get(model_id),
                "predictions": counts.get((model_id, True), 0) + counts.get((model_id, False), 0),
                "served": counts.get((model_id, True), 0),
                "labelled": stats.get("n", 0),
                "accuracy": stats.get("accuracy"),
                "served_labelled": stats.get("served_n", 0),
                "served_accuracy": stats.get("served_accuracy"),
            }
        out["paired"] = both
        return out
