"""The moderation review queue: images whose safety verdict is flagged or uncertain wait for a person,
most urgent first; decisions (approve / reject / escalate, with a reason) are recorded and calibrate the
thresholds.

Who is queued, from an image's newest `safety` result and the configured thresholds:

* `risk` = the unsafe score, max over the level-1 category scores (0..1);
* `distance` = how far the deciding scores lie from the thresholds they are compared with:
  min(|explicit_nudity - explicit threshold|, |risk - suggestive threshold|);
* `uncertainty` = max(0, 1 - distance / margin) (1 on a threshold, 0 at `margin` or further);
* queued when the verdict is `suggestive` / `explicit` (flagged) or `uncertainty` > 0;
* `priority` = risk + uncertainty_weight x uncertainty: the queue is ordered by it, highest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from feedlens.config import Settings
from feedlens.core.errors import CodedError
from feedlens.core.results.safety import SafetyResult
from feedlens.storage import feedback as fb
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import ModerationDecision, ReviewItem

DECISIONS = ("approve", "reject", "escalate")
VERDICTS = ("safe", "suggestive", "explicit")
STATE_OF = {"approve": "approved", "reject": "rejected", "escalate": "escalated"}
GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
SCAN_BATCH = 500


class ReviewError(CodedError):
    """A review request that cannot be done; `code` is stable (HTTP status in api/problems.py)."""


@dataclass(frozen=True)
class Assessment:
    verdict: str
    risk: float
    uncertainty: float
    priority: float

    @property
    def queued(self) -> bool:
        return self.verdict != "safe" or self.uncertainty > 0.0


def assess(result: SafetyResult, settings: Settings) -> Assessment:
    """Where a safety result puts the image; see the module docstring."""
    scores = dict(result.scores)
    risk = max(scores.values(), default=0.0)
    explicit = scores.get("explicit_nudity", 0.0)
    distance = min(
        abs(explicit - settings.safety_explicit_threshold), abs(risk - settings.safety_suggestive_threshold)
    )
    margin = settings.review.margin
    uncertainty = max(0.0, 1.0 - distance / margin) if margin > 0 else 0.0
    priority = risk + settings.review.uncertainty_weight * uncertainty
    return Assessment(result.verdict.value, risk, uncertainty, priority)


def precision_recall(risk: np.ndarray, unsafe: np.ndarray, threshold: float) -> dict[str, Any]:
    """Precision and recall of "risk >= threshold" as the unsafe flag. risk (N,) float, unsafe (N,) bool."""
    flagged = risk >= threshold
    tp = int(np.sum(flagged & unsafe))
    fp = int(np.sum(flagged & ~unsafe))
    fn = int(np.sum(~flagged & unsafe))
    return {
        "threshold": threshold,
        "flagged": tp + fp,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def item_view(item: ReviewItem) -> dict[str, Any]:
    return {
        "image_id": item.image_id,
        "state": item.state,
        "verdict": item.verdict,
        "risk": item.risk,
        "uncertainty": round(item.uncertainty, 6),
        "priority": round(item.priority, 6),
        "safety_version": item.safety_version,
        "queued_at": item.queued_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


def decision_view(row: ModerationDecision) -> dict[str, Any]:
    return {
        "image_id": row.image_id,
        "decision": row.decision,
        "reason": row.reason,
        "verdict_before": row.verdict_before,
        "risk": row.risk,
        "source": row.source,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


class ReviewService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    # -- filling the queue -----------------------------------------------------------------------------
    def _assess_images(self, workspace: int, image_ids: Sequence[str]) -> tuple[int, int]:
        """Queue (or refresh) the images that need a person, drop pending ones that no longer do:
        (queued, dropped)."""
        queued, dropped = 0, []
        with self.database.session() as session:
            analyses = repo.current_analyses(session, list(image_ids))
            for image_id in image_ids:
                stored = analyses.get(image_id, {}).get("safety")
                safety = stored.loaded if stored is not None else None
                if stored is None or not isinstance(safety, SafetyResult):
                    continue
                found = assess(safety, self.settings)
                if not found.queued:
                    dropped.append(image_id)
                    continue
                fb.enqueue(
                    session,
                    workspace,
                    image_id,
                    verdict=found.verdict,
                    risk=found.risk,
                    uncertainty=found.uncertainty,
                    priority=found.priority,
                    safety_version=stored.version,
                )
                queued += 1
            removed = fb.dequeue_pending(session, dropped)
        return queued, removed

    def after_ingest(self, workspace: int, image_ids: list[str]) -> None:
        """Ingest hook: new (or re-sent) images whose safety result is flagged or uncertain are queued."""
        self._assess_images(workspace, image_ids)

    def scan(self, workspace: int) -> dict[str, int]:
        """Assess every image of the workspace (e.g. ingested before the queue existed, or after the
        thresholds or the margin changed); decided images keep their decision."""
        with self.database.session() as session:
            ids = fb.workspace_image_ids(session, workspace)
        queued = removed = 0
        for start in range(0, len(ids), SCAN_BATCH):
            q, r = self._assess_images(workspace, ids[start : start + SCAN_BATCH])
            queued, removed = queued + q, removed + r
        with self.database.session() as session:
            pending = fb.count_state(session, workspace, "pending")
        return {"scanned": len(ids), "queued": queued, "removed": removed, "pending": pending}

    # -- reading ---------------------------------------------------------------------------------------
    def queue(self, workspace: int, limit: int = 20, state: str = "pending") -> list[dict[str, Any]]:
        if state not in fb.OPEN_STATES:
            raise ReviewError("invalid_state", f"state must be one of {', '.join(fb.OPEN_STATES)}")
        with self.database.session() as session:
            return [item_view(i) for i in fb.queue(session, workspace, (state,), limit)]

    def status(self, workspace: int, image_id: str) -> dict[str, Any] | None:
        """The image's review entry and its decisions; None when the workspace has no such image."""
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            item = fb.review_item(session, workspace, image_id)
            return {
                "image_id": image_id,
                "state": item.state if item is not None else "none",
                "item": item_view(item) if item is not None else None,
                "decisions": [decision_view(d) for d in fb.decisions_of(session, image_id)],
            }

    # -- deciding --------------------------------------------------------------------------------------
    def decide(
        self, workspace: int, image_id: str, decision: str, reason: str = "", by: str = ""
    ) -> dict[str, Any] | None:
        """A reviewer's decision on a queued image; None when the workspace has no such image. An image not
        waiting for review (never queued, or already approved / rejected) is `not_in_review` (409): a
        later change of mind goes through a safety correction, which is always accepted."""
        if decision not in DECISIONS:
            raise ReviewError("invalid_decision", f"decision must be one of {', '.join(DECISIONS)}")
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            # locked (PostgreSQL): of two moderators deciding at once, the second sees the first's decision
            item = fb.review_item(session, workspace, image_id, lock=True)
            if item is None or item.state not in fb.OPEN_STATES:
                state = item.state if item is not None else "none"
                raise ReviewError("not_in_review", f"image {image_id!r} is not waiting for review ({state})")
            if item.state == "escalated" and decision == "escalate":
                raise ReviewError("not_in_review", f"image {image_id!r} is already escalated")
            return self._record(session, workspace, image_id, decision, reason, by, "review")

    def record_verdict(
        self, workspace: int, image_id: str, verdict: str, reason: str = "", by: str = ""
    ) -> dict[str, Any]:
        """A person's moderation verdict from a correction: `safe` approves, anything else rejects, whether
        or not the image was queued."""
        if verdict not in VERDICTS:
            raise ReviewError("invalid_verdict", f"verdict must be one of {', '.join(VERDICTS)}")
        decision = "approve" if verdict == "safe" else "reject"
        with self.database.session() as session:
            return self._record(session, workspace, image_id, decision, reason, by, "correction")

    def _record(
        self,
        session: Session,
        workspace: int,
        image_id: str,
        decision: str,
        reason: str,
        by: str,
        source: str,
    ) -> dict[str, Any]:
        stored = repo.current_analyses(session, [image_id])[image_id].get("safety")
        safety = stored.loaded if stored is not None else None
        found = assess(safety, self.settings) if isinstance(safety, SafetyResult) else None
        fb.set_state(
            session,
            workspace,
            image_id,
            STATE_OF[decision],
            verdict=found.verdict if found else None,
            risk=found.risk if found else None,
            uncertainty=found.uncertainty if found else 0.0,
            priority=found.priority if found else 0.0,
            safety_version=stored.version if stored is not None else "",
        )
        row = fb.add_decision(
            session,
            workspace_id=workspace,
            image_id=image_id,
            decision=decision,
            reason=reason,
            verdict_before=found.verdict if found else None,
            risk=found.risk if found else None,
            source=source,
            created_by=by,
        )
        return {**decision_view(row), "state": STATE_OF[decision]}

    # -- calibration -----------------------------------------------------------------------------------
    def calibration(self, workspace: int, target_precision: float | None = None) -> dict[str, Any]:
        """Precision/recall of the unsafe flag ("risk >= t") at a grid of thresholds t, judged by people's
        decisions (the newest approve = safe, reject = unsafe, per image; escalations left out); the point
        of the current suggestive threshold; what the current verdicts (both thresholds) achieved; and the
        lowest threshold on the grid whose precision reaches `target_precision` (the most recall for it)."""
        target = self.settings.review.target_precision if target_precision is None else target_precision
        with self.database.session() as session:
            rows = [
                (float(d.risk), d.decision == "reject", d.verdict_before)
                for d in fb.final_decisions(session, workspace)
                if d.risk is not None
            ]
        risk = np.array([r[0] for r in rows], dtype=np.float64)
        unsafe = np.array([r[1] for r in rows], dtype=bool)
        current = self.settings.safety_suggestive_threshold
        grid = [precision_recall(risk, unsafe, t) for t in GRID]
        reaching = [p for p in grid if p["precision"] is not None and p["precision"] >= target]
        flagged = np.array([r[2] not in (None, "safe") for r in rows], dtype=bool)
        verdicts = precision_recall(flagged.astype(np.float64), unsafe, 0.5)
        return {
            "decisions": len(rows),
            "unsafe": int(unsafe.sum()),
            "safe": int((~unsafe).sum()),
            "score": "risk: max of the safety category scores",
            "current": precision_recall(risk, unsafe, current),
            "current_verdicts": {k: v for k, v in verdicts.items() if k != "threshold"},
            "target_precision": target,
            "suggested": min(reaching, key=lambda p: p["threshold"]) if reaching else None,
            "grid": grid,
        }
