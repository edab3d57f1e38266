"""Labels in bulk: an ImageFolder-style directory (one sub-folder per category) or a CSV file."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from feedlens.core.taxonomy import Taxonomy
from feedlens.services.categories.service import CategoryError, CategoryService
from feedlens.services.ingest import IngestItem, Ingestor
from feedlens.services.pipeline import iter_image_files
from feedlens.storage import repositories as repo

MAX_CSV_BYTES = 50 * 1024 * 1024
TRUE, FALSE = {"1", "true", "yes", "y", "t", ""}, {"0", "false", "no", "n", "f"}


@dataclass
class LabelImport:
    labelled: Counter[str] = field(default_factory=Counter)  # category -> images shown to be of it
    negatives: int = 0  # statements that an image is not of a category
    added: int = 0  # images ingested by a folder import
    errors: list[dict[str, str]] = field(default_factory=list)  # {"where", "code", "message"}


def slug(name: str) -> str:
    """Folder names cannot always spell a category: "food & drink", food_and_drink, Food-Drink and
    FoodAndDrink all read "fooddrink" ("and" is dropped as a whole word only: "landscape" stays)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).casefold()  # FoodAndDrink -> food and drink
    return "".join(w for w in re.findall(r"[0-9a-z]+", spaced) if w != "and")


def _folder_category(taxonomy: Taxonomy, folder: str) -> str | None:
    direct = taxonomy.get(folder)
    if direct is not None:
        return direct.name
    matches = [c.name for c in taxonomy.categories if slug(c.name) == slug(folder)]
    return matches[0] if len(matches) == 1 else None


def import_folder(
    service: CategoryService, ingestor: Ingestor, workspace: int, root: Path, created_by: str = ""
) -> LabelImport:
    """Ingest `root/<category>/**/<image>` and label each image with its folder's category. Folder names
    must name categories of the workspace's taxonomy (exactly, or as a slug); unknown ones are refused
    before anything is ingested."""
    if not root.is_dir():
        raise CategoryError("label_import_invalid", f"not a folder: {root}")
    taxonomy, _ = service.taxonomy(workspace)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    mapping = {folder: _folder_category(taxonomy, folder.name) for folder in folders}
    unknown = [f.name for f, c in mapping.items() if c is None]
    if unknown or not folders:
        raise CategoryError(
            "unknown_category",
            f"folders that name no category: {', '.join(unknown)} (categories: {', '.join(taxonomy.names)})"
            if unknown
            else f"no category folders in {root}",
        )
    report = LabelImport()
    for folder, category in mapping.items():
        assert category is not None
        items = [IngestItem(source=str(p), path=p) for p in iter_image_files([folder])]
        for outcome in ingestor.ingest(workspace, items):
            if outcome.image_id is None:
                error = outcome.error or {}
                report.errors.append(
                    {
                        "where": outcome.item.source,
                        "code": error.get("code", ""),
                        "message": error.get("message", ""),
                    }
                )
                continue
            report.added += outcome.status == "added"
            service.label(workspace, outcome.image_id, [category], source="folder", created_by=created_by)
            report.labelled[category] += 1
    return report


def import_csv(service: CategoryService, workspace: int, path: Path, created_by: str = "") -> LabelImport:
    """Rows `image,category[,positive]`: `image` is an image id, the SHA-256 of the original file, or the
    path of a file (relative to the CSV) already ingested. Bad rows are reported with their line number;
    the good ones are recorded."""
    if not path.is_file():
        raise CategoryError("label_import_invalid", f"no such file: {path}")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise CategoryError("label_import_invalid", f"{path} is larger than {MAX_CSV_BYTES} bytes")
    report = LabelImport()
    taxonomy, _ = service.taxonomy(workspace)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = [h.strip().lower() for h in (rows[0].keys() if rows else [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CategoryError("label_import_invalid", f"{path}: not a UTF-8 CSV file ({exc})") from None
    if rows and not {"image", "category"} <= set(header):
        raise CategoryError(
            "label_import_invalid", f"{path}: the header must name `image` and `category` columns"
        )
    for line, row in enumerate(rows, start=2):
        fields = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{path}:{line}"
        positive = fields.get("positive", "").lower()
        if positive not in TRUE | FALSE:
            report.errors.append(
                {"where": where, "code": "label_import_invalid", "message": f"positive={positive!r}"}
            )
            continue
        image_id = _resolve_image(service, workspace, fields.get("image", ""), path.parent)
        if image_id is None:
            report.errors.append(
                {
                    "where": where,
                    "code": "image_not_found",
                    "message": f"no stored image {fields.get('image')!r}",
                }
            )
            continue
        category = fields.get("category", "")
        try:
            if positive in TRUE:
                service.label(workspace, image_id, [category], source="csv", created_by=created_by)
            else:
                service.label(workspace, image_id, [], [category], source="csv", created_by=created_by)
        except CategoryError as exc:
            report.errors.append({"where": where, "code": exc.code, "message": exc.message})
            continue
        if positive in TRUE:
            known = taxonomy.get(category)
            report.labelled[known.name if known is not None else category] += 1
        else:
            report.negatives += 1
    return report


def _resolve_image(service: CategoryService, workspace: int, ref: str, base: Path) -> str | None:
    if not ref:
        return None
    with service.database.session() as session:
        if repo.get_image(session, workspace, ref) is not None:
            return ref
        sha = ref.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            file = (base / ref) if not Path(ref).is_absolute() else Path(ref)
            if not file.is_file():
                return None
            sha = hashlib.sha256(file.read_bytes()).hexdigest()
        return repo.images_by_sha(session, workspace, [sha]).get(sha)
