"""Corrections: a person confirms or corrects what feedlens said about an image (its categories, its
moderation verdict). Each correction is recorded with who, when, what the system predicted at that moment
and which version predicted it, and takes effect where it counts:

* categories become `category_labels` (CategoryService.label), the ground truth trained models learn from
  and the A/B live accuracy is measured against (services/training/registry.py);
* a verdict becomes a moderation decision (`safe` approves, `suggestive` / `explicit` reject), which sets
  the image's review state and feeds threshold calibration (services/feedback/review.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feedlens.core.errors import CodedError
from feedlens.core.taxonomy import OTHER
from feedlens.services.categories import CategoryService
from feedlens.services.feedback.review import VERDICTS, ReviewError, ReviewService
from feedlens.storage import feedback as fb
from feedlens.storage import repositories as repo
from feedlens.storage.categories import ANALYZER as CATEGORIES
from feedlens.storage.database import Database
from feedlens.storage.tables import Correction

TASK = "categories"  # the trained-model task whose served prediction a category correction records


class CorrectionError(CodedError):
    """A correction that cannot be recorded; `code` is stable (HTTP status in api/problems.py)."""


def correction_view(row: Correction) -> dict[str, Any]:
    return {
        "id": row.id,
        "image_id": row.image_id,
        "kind": row.kind,
        "value": row.value,
        "previous": row.previous,
        "model_version": row.model_version,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


class CorrectionService:
    def __init__(self, database: Database, categories: CategoryService, review: ReviewService) -> None:
        self.database = database
        self.categories = categories
        self.review = review

    def _predicted(self, workspace: int, image_id: str) -> dict[str, Any] | None:
        """What the system says about the image now: newest categories and safety results (with their
        versions) and the served trained-model prediction; None when the workspace has no such image."""
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            analyses = repo.current_analyses(session, [image_id])[image_id]
            return {
                "categories": analyses.get(CATEGORIES),
                "safety": analyses.get("safety"),
                "trained": fb.served_prediction(session, image_id, TASK),
            }

    def correct(
        self,
        workspace: int,
        image_id: str,
        *,
        categories: Sequence[str] = (),
        not_: Sequence[str] = (),
        confirm: bool = False,
        safety: str | None = None,
        reason: str = "",
        by: str = "",
        source: str = "api",
    ) -> dict[str, Any] | None:
        """Record and apply a correction; None when the workspace has no such image.

        `confirm` accepts the assigned categories as labels (an image assigned only `other` is labelled as
        showing none of the taxonomy's categories); `categories` add to them and `not` overrides both.
        Unknown categories (`unknown_category`) and contradictions (`label_conflict`) change nothing.
        """
        if not (categories or not_ or confirm or safety):
            raise CorrectionError("empty_correction", "give categories, `not`, `confirm` or a safety verdict")
        if safety is not None and safety not in VERDICTS:  # checked first: a bad verdict changes nothing
            raise ReviewError("invalid_verdict", f"verdict must be one of {', '.join(VERDICTS)}")
        now = self._predicted(workspace, image_id)
        if now is None:
            return None
        out: dict[str, Any] = {"image_id": image_id, "corrections": []}
        if categories or not_ or confirm:
            done = self._categories(workspace, image_id, now, categories, not_, confirm, by, source)
            out["labels"] = done["labels"]
            out["corrections"].append(done["correction"])
        if safety is not None:
            decision = self.review.record_verdict(workspace, image_id, safety, reason, by)
            found = now["safety"]
            previous = (
                {
                    "verdict": found.result.get("verdict"),
                    "scores": found.result.get("scores"),
                    "risk": decision["risk"],
                }
                if found is not None
                else {}
            )
            value = {"verdict": safety, "confirmed": previous.get("verdict") == safety, "reason": reason}
            out["corrections"].append(
                self._record(
                    workspace, image_id, "safety", value, previous, found.version if found else "", by
                )
            )
            out["decision"] = decision
        return out

    def _categories(
        self,
        workspace: int,
        image_id: str,
        now: dict[str, Any],
        categories: Sequence[str],
        not_: Sequence[str],
        confirm: bool,
        by: str,
        source: str,
    ) -> dict[str, Any]:
        found = now["categories"]
        assigned = [str(c) for c in found.result.get("assigned", [])] if found is not None else []
        if confirm and found is None:
            raise CorrectionError("nothing_to_confirm", f"image {image_id!r} has no categories yet")
        said = {c.casefold() for c in categories}
        refused = {c.casefold() for c in not_}
        shown = [c for c in assigned if c.casefold() != OTHER] if confirm else []
        # an explicit `not` overrides what confirming would accept
        positive = [*categories, *(c for c in shown if c.casefold() not in refused)]
        negative = list(not_)
        if confirm and not shown:  # `other` confirmed: the image shows none of the taxonomy's categories
            names = self.categories.taxonomy(workspace)[0].names
            negative += [n for n in names if n.casefold() not in said]
        labels = self.categories.label(workspace, image_id, positive, negative, source, by)
        previous = {
            "assigned": assigned,
            "version": found.version if found is not None else None,
            "trained": now["trained"],
        }
        value = {"categories": positive, "not": negative, "confirm": confirm}
        version = found.version if found is not None else ""
        if now["trained"] is not None:
            version = f"{version} trained-{now['trained']['version']}"
        correction = self._record(workspace, image_id, "categories", value, previous, version, by)
        return {"labels": labels or [], "correction": correction}

    def _record(
        self,
        workspace: int,
        image_id: str,
        kind: str,
        value: dict[str, Any],
        previous: dict[str, Any],
        model_version: str,
        by: str,
    ) -> dict[str, Any]:
        with self.database.session() as session:
            row = fb.add_correction(
                session,
                workspace_id=workspace,
                image_id=image_id,
                kind=kind,
                value=value,
                previous=previous,
                model_version=model_version[:256],
                created_by=by,
            )
            return correction_view(row)

    def history(self, workspace: int, image_id: str) -> list[dict[str, Any]] | None:
        """The image's corrections, newest first; None when the workspace has no such image."""
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            return [correction_view(row) for row in fb.corrections_of(session, image_id)]
