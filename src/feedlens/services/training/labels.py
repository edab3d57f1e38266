"""Labels people can fix: remove a label, or replace one category with another, on one image.

Labels are what trained models learn from and what live accuracy is measured against, so a wrong one must
go without a trace in training and with a trace in the history: each edit is recorded as a correction
(kind `labels`, the labels before in `previous`), as `feedlens correct` records its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete

from feedlens.core.errors import CodedError
from feedlens.storage import categories as cats
from feedlens.storage import feedback as fb
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import CategoryLabel

if TYPE_CHECKING:
    from feedlens.services.categories import CategoryService

KIND = "labels"


class LabelEditError(CodedError):
    """`not_labelled`: the image has no label for that category; `same_category`: a replacement by itself.
    Nothing was changed."""

    http_status = 404


def _view(rows: Sequence[CategoryLabel]) -> list[dict[str, Any]]:
    return [
        {
            "category": r.category,
            "positive": r.positive,
            "source": r.source,
            "created_by": r.created_by,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


class LabelEdits:
    def __init__(self, database: Database) -> None:
        self.database = database

    def remove(
        self, workspace: int, image_id: str, categories: Sequence[str], by: str = ""
    ) -> dict[str, Any] | None:
        """Delete the image's labels (shows or does not show) for `categories`; None: no such image. Raises
        `not_labelled` (changing nothing) when one of them has no label on the image."""
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            before = cats.labels_of_image(session, image_id)
            known = {r.category.casefold(): r.category for r in before}
            missing = [c for c in categories if c.casefold() not in known]
            if missing:
                raise LabelEditError(
                    "not_labelled",
                    f"image {image_id} has no label for {', '.join(map(repr, missing))} "
                    f"(its labels: {', '.join(known.values()) or 'none'})",
                )
            names = [known[c.casefold()] for c in categories]
            previous = {"labels": _view(before)}
            session.execute(
                delete(CategoryLabel).where(
                    CategoryLabel.image_id == image_id, CategoryLabel.category.in_(names)
                )
            )
            row = fb.add_correction(
                session,
                workspace_id=workspace,
                image_id=image_id,
                kind=KIND,
                value={"removed": names},
                previous=previous,
                model_version="",
                created_by=by,
            )
            session.flush()
            return {
                "image_id": image_id,
                "removed": names,
                "labels": _view(cats.labels_of_image(session, image_id)),
                "correction_id": row.id,
            }

    def replace(
        self, categories: CategoryService, workspace: int, image_id: str, old: str, new: str, by: str = ""
    ) -> dict[str, Any] | None:
        """The image shows `new`, not `old`: `old`'s label is removed (not negated), `new` labelled shown.
        None: no such image. `not_labelled` when `old` has no label; `unknown_category` (from the
        taxonomy) for a `new` it lacks; either way nothing changes."""
        if old.casefold() == new.casefold():
            raise LabelEditError("same_category", f"nothing to replace: {old!r} and {new!r} are one category")
        labels = categories.labels(workspace, image_id)
        if labels is None:
            return None
        if old.casefold() not in {str(lab["category"]).casefold() for lab in labels}:
            shown = ", ".join(str(lab["category"]) for lab in labels) or "none"
            raise LabelEditError(
                "not_labelled", f"image {image_id} has no label for {old!r} (its labels: {shown})"
            )
        # the new label first: a category the taxonomy lacks is refused before anything changes
        categories.label(workspace, image_id, [new], source="edit", created_by=by)
        done = self.remove(workspace, image_id, [old], by)
        return None if done is None else {**done, "added": [new]}
