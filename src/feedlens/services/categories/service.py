"""Categories of a workspace: its taxonomy (versioned), categorising images from their stored results,
labels, training (through the model registry: models.py), recategorising, and per-day counts.

Categorisation reads only stored data (analyses, vectors, posts), so categorising at ingest and
`feedlens recategorize` after a taxonomy or model change give the same answer for the same inputs. The
embeddings of an image's OCR text and captions are stored as vectors (`ocr`, `caption`) the first time,
which makes recategorising a workspace arithmetic rather than sentence encoding.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedlens.config import Settings
from feedlens.core.errors import CodedError
from feedlens.core.results.categories import CategoriesResult
from feedlens.core.results.text import TextResult
from feedlens.core.taxonomy import OTHER, Taxonomy
from feedlens.services.categories import workspace_stats as wstats
from feedlens.services.categories.categoriser import Categoriser, TrainedModel
from feedlens.services.categories.fusion import COMPONENTS
from feedlens.services.categories.heads import CategoryHead
from feedlens.services.categories.models import (
    CategoryModels,
    TrainReport,
    as_array,
    legacy_entry,
    registry_entry,
    report_of,
)
from feedlens.services.categories.normalise import Moments
from feedlens.services.categories.taxonomies import TaxonomyCompiler, default_taxonomy
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence
from feedlens.services.search import caption_text
from feedlens.storage import categories as cats
from feedlens.storage import embeddings as vectors
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import Analysis, Image

log = logging.getLogger(__name__)

OCR, CAPTION = "ocr", "caption"  # embedding kinds this service stores
BATCH = 256


class CategoryError(CodedError):
    """A request about categories that cannot be honoured (unknown category, too few labels)."""


class CategoryService:
    def __init__(
        self,
        database: Database,
        compiler: TaxonomyCompiler,
        settings: Settings,
        models: Callable[[], CategoryModels] | None = None,
    ) -> None:
        self.database = database
        self.compiler = compiler
        self.settings = settings
        # the model registry, built on first use (None: only the older category models, never training)
        self._registry = models
        self._compiled: dict[tuple[int, int], CompiledTaxonomy] = {}
        self._models: dict[tuple[int, int], TrainedModel] = {}
        self._lock = threading.Lock()
        self._versions = threading.Lock()  # one version number per new taxonomy or model in this process
        self._label_thresholds = wstats.LabelThresholds()

    def _new_version(self, add: Callable[[Session], int]) -> int:
        """Run `add` (which takes max(version) + 1) so that concurrent writers get distinct numbers: a lock
        within this process, one retry when another process took the number first."""
        with self._versions:
            for attempt in range(2):
                try:
                    with self.database.session() as session:
                        return add(session)
                except IntegrityError:
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    # -- taxonomy --------------------------------------------------------------------------------------
    def taxonomy(self, workspace: int) -> tuple[Taxonomy, int]:
        """The current taxonomy and its version; a workspace without one gets the default as version 1."""
        with self.database.session() as session:
            row = cats.current_taxonomy(session, workspace)
            if row is not None:
                return Taxonomy.from_dict(row.definition), row.version
        taxonomy = default_taxonomy()

        def first(session: Session) -> int:
            row = cats.current_taxonomy(session, workspace)  # another request may have just made it
            return (
                row.version if row is not None else cats.add_taxonomy(session, workspace, taxonomy.to_dict())
            )

        version = self._new_version(first)
        return self.taxonomy(workspace) if version != 1 else (taxonomy, version)

    def set_taxonomy(self, workspace: int, taxonomy: Taxonomy) -> tuple[int, int]:
        """Store a new version (its concepts are checked first) and recategorise the workspace with it.
        Returns (version, images recategorised). Labels of removed categories are kept, unused."""
        self.compiler.compile(taxonomy, 0)  # unknown concepts fail here, before anything is stored
        self.taxonomy(workspace)  # the default becomes version 1 first, so history shows what came before
        version = self._new_version(lambda session: cats.add_taxonomy(session, workspace, taxonomy.to_dict()))
        return version, self.recategorize(workspace)

    def history(self, workspace: int) -> list[dict[str, Any]]:
        self.taxonomy(workspace)
        with self.database.session() as session:
            return [
                {
                    "version": row.version,
                    "name": row.definition.get("name"),
                    "categories": [c["name"] for c in row.definition.get("categories", [])],
                    "created_at": row.created_at.isoformat(),
                }
                for row in cats.taxonomy_versions(session, workspace)
            ]

    def _compiled_for(self, workspace: int) -> CompiledTaxonomy:
        taxonomy, version = self.taxonomy(workspace)
        key = (workspace, version)
        with self._lock:
            compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self.compiler.compile(taxonomy, version)
            with self._lock:
                self._compiled[key] = compiled
        return compiled

    def registry(self) -> CategoryModels | None:
        return self._registry() if self._registry is not None else None

    def categoriser(self, workspace: int) -> Categoriser:
        """The workspace's categoriser: zero-shot blended with the registry's production model, else with
        the newest older category model, else zero-shot alone."""
        compiled = self._compiled_for(workspace)
        registry = self.registry()
        model = registry.production(workspace) if registry is not None else None
        if model is None:
            model = self._legacy_model(workspace)
        config = self.settings.categories
        return Categoriser(compiled, config.threshold, model, caption_weight=config.caption_weight)

    def _legacy_model(self, workspace: int) -> TrainedModel | None:
        """The newest model of the `category_models` table (trained before the one route), if any."""
        with self.database.session() as session:
            row = cats.current_model(session, workspace)
            key = (workspace, row.version) if row is not None else None
            model = self._models.get(key) if key else None
            if row is not None and model is None:
                model = TrainedModel(row.version, CategoryHead.from_bytes(row.weights))
                self._models[(workspace, row.version)] = model
        return model

    def _trained(self, workspace: int, model: TrainedModel | None, ids: Sequence[str]) -> dict[str, Any]:
        """A registry model's probabilities of `ids` by image id ({} for none or an older head)."""
        registry = self.registry()
        if model is None or model.model_id is None or registry is None:
            return {}
        return registry.probabilities(workspace, model, ids)

    # -- categorising ----------------------------------------------------------------------------------
    def evidence(
        self, session: Session, image_ids: Sequence[str], refresh_text: bool = False
    ) -> dict[str, Evidence]:
        """Evidence of stored images (those without analyses are left out). `refresh_text` re-embeds
        captions (after an ingest that may have linked new posts)."""
        analyses = repo.current_analyses(session, image_ids)
        content = vectors.get(session, image_ids, "content")
        visual = vectors.get(session, image_ids, "visual")
        posts = repo.posts_of(session, image_ids)
        captions = {i: caption_text(posts.get(i, [])) for i in image_ids}
        texts = {i: _full_text(analyses[i].get("text")) for i in image_ids}
        model = self.compiler.encoder.version  # vectors another text model made are made again
        text_vectors = vectors.get(session, image_ids, OCR, model)
        caption_vectors = {} if refresh_text else vectors.get(session, image_ids, CAPTION, model)
        need_text = [i for i in image_ids if texts[i].strip() and i not in text_vectors]
        need_caption = [i for i in image_ids if captions[i].strip() and i not in caption_vectors]
        for kind, ids, source, found in (
            (OCR, need_text, texts, text_vectors),
            (CAPTION, need_caption, captions, caption_vectors),
        ):
            for image_id, vector in zip(ids, self.compiler.encode([source[i] for i in ids]), strict=True):
                assert vector is not None
                vectors.put(session, image_id, kind, self.compiler.encoder.version, vector)
                found[image_id] = vector
        if refresh_text:
            for image_id in image_ids:
                if not captions[image_id].strip():
                    vectors.drop(session, image_id, CAPTION)
        out = {}
        for image_id in image_ids:
            results = {name: a.loaded for name, a in analyses[image_id].items()}
            if results.get("labels") is None:
                continue
            out[image_id] = Evidence.from_results(
                results,
                content=content.get(image_id),
                visual=visual.get(image_id),
                caption=captions[image_id],
                text_vector=text_vectors.get(image_id),
                caption_vector=caption_vectors.get(image_id),
            )
        return out

    def categorise(
        self, workspace: int, image_ids: Sequence[str], refresh_text: bool = False, count: bool = True
    ) -> dict[str, CategoriesResult]:
        """Categorise stored images and store the results (analyses + facets); returns them by image id.
        Scores are read against the workspace's statistics, which first count the images new to them
        (`count`; a full recomputation has counted them already)."""
        categoriser = self.categoriser(workspace)
        out: dict[str, CategoriesResult] = {}
        for start in range(0, len(image_ids), BATCH):
            chunk = list(image_ids[start : start + BATCH])
            answers = self._trained(workspace, categoriser.model, chunk)  # before the session: it writes
            with self.database.session() as session:
                evidence = self.evidence(session, chunk, refresh_text)
                ids = list(evidence)
                items = [evidence[i] for i in ids]
                computed = categoriser.features(items)
                compiled = categoriser.compiled
                if count:
                    moments = wstats.add(session, workspace, compiled, ids, computed[1])
                    refreshed = wstats.read(session, workspace, compiled)[1]
                else:
                    moments, refreshed = wstats.read(session, workspace, compiled)
                scorer = replace(categoriser, moments=moments)
                if scorer.threshold is None:
                    fit = self._label_thresholds.get(session, workspace, scorer, refreshed, self.evidence)
                    if fit is not None:
                        scorer = replace(scorer, label_thresholds=fit.thresholds, zero_shot_trust=fit.trust)
                model = categoriser.model
                trained = as_array(answers, ids, len(model.categories)) if answers and model else None
                results = scorer.categorise(items, computed, trained)
                for image_id, result in zip(ids, results, strict=True):
                    repo.add_analyses(
                        session, image_id, {cats.ANALYZER: result.to_dict()}, {cats.ANALYZER: result.version}
                    )
                    out[image_id] = result
        return out

    def after_ingest(self, workspace: int, image_ids: list[str]) -> None:
        """Ingest hook: categorise new images (and images newly linked to a post: the caption counts);
        recategorise the workspace while it is small and has doubled since its statistics were recomputed."""
        self.categorise(workspace, image_ids, refresh_text=True)
        compiled = self._compiled_for(workspace)
        with self.database.session() as session:
            moments, refreshed = wstats.read(session, workspace, compiled)
        if wstats.needs_refresh(moments, refreshed):
            self.recategorize(workspace)

    def recategorize(self, workspace: int) -> int:
        """Categorise every image of the workspace with the current taxonomy and model, against statistics
        recomputed over every image first (two passes over the stored evidence)."""
        categoriser = self.categoriser(workspace)
        total, images = Moments.empty(len(COMPONENTS), len(categoriser.compiled.names)), 0
        for chunk in self._image_chunks(workspace):
            with self.database.session() as session:
                evidence = self.evidence(session, chunk)
            total = total + Moments.of(categoriser.features(list(evidence.values()))[1])
            images += len(evidence)
        with self.database.session() as session:
            wstats.replace(session, workspace, categoriser.compiled, total, images)
        done = 0
        for chunk in self._image_chunks(workspace):
            done += len(self.categorise(workspace, chunk, count=False))
        return done

    def _image_chunks(self, workspace: int) -> Iterator[list[str]]:
        with self.database.session() as session:
            ids = list(
                session.scalars(select(Image.id).where(Image.workspace_id == workspace).order_by(Image.id))
            )
        for start in range(0, len(ids), BATCH):
            yield ids[start : start + BATCH]

    # -- labels and training ---------------------------------------------------------------------------
    def _known(self, workspace: int, names: Sequence[str]) -> list[str]:
        """Canonical names of the current taxonomy's categories; unknown names are an error."""
        taxonomy, _ = self.taxonomy(workspace)
        out, unknown = [], []
        for name in names:
            category = taxonomy.get(name)
            if category is None:
                unknown.append(name)
            else:
                out.append(category.name)
        if unknown:
            raise CategoryError(
                "unknown_category",
                f"not in the workspace's taxonomy: {', '.join(map(repr, unknown))} "
                f"(categories: {', '.join(taxonomy.names)})",
            )
        return list(dict.fromkeys(out))

    def label(
        self,
        workspace: int,
        image_id: str,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        source: str = "api",
        created_by: str = "",
    ) -> list[dict[str, Any]] | None:
        """Record labels for a stored image; None if the workspace has no such image."""
        pos, neg = self._known(workspace, positive), self._known(workspace, negative)
        if set(pos) & set(neg):
            raise CategoryError(
                "label_conflict", f"labelled both shown and not shown: {sorted(set(pos) & set(neg))}"
            )
        if OTHER in {p.casefold() for p in positive}:
            raise CategoryError("unknown_category", f"`{OTHER}` is not a category one can label")
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            cats.set_labels(session, workspace, image_id, pos, neg, source, created_by)
        return self.labels(workspace, image_id)

    def labels(self, workspace: int, image_id: str) -> list[dict[str, Any]] | None:
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:
                return None
            return [
                {
                    "category": row.category,
                    "positive": row.positive,
                    "source": row.source,
                    "created_by": row.created_by,
                    "created_at": row.created_at.isoformat(),
                }
                for row in cats.labels_of_image(session, image_id)
            ]

    def train(self, workspace: int, mode: str = "probe", created_by: str = "") -> TrainReport:
        """`categories train`: train through the model registry's recipe on the workspace's labels (images
        labelled with exactly one category), register the version, make it production and recategorise.
        Too few labels (none, one category, fine-tuning below its minimum): `not_enough_labels`."""
        registry = self.registry()
        if registry is None:
            raise CategoryError("training_unavailable", "this service was built without the model registry")
        taxonomy, taxonomy_version = self.taxonomy(workspace)
        model = registry.train(workspace, mode, created_by)
        return report_of(model, taxonomy.names, taxonomy_version, self.recategorize(workspace))

    def models(self, workspace: int) -> list[dict[str, Any]]:
        """The registry's versions (newest first; `current`: production drives the categories), then the
        older category models, read-only (`current` for the newest while nothing is in production)."""
        registry = self.registry()
        production = registry.production(workspace) if registry is not None else None
        versions = registry.versions(workspace) if registry is not None else []
        with self.database.session() as session:
            older = list(cats.models(session, workspace))
            return [
                *(registry_entry(m, production) for m in sorted(versions, key=lambda m: -m["version"])),
                *(legacy_entry(m, production is None and i == 0) for i, m in enumerate(older)),
            ]

    # -- counts ----------------------------------------------------------------------------------------
    def overview(self, workspace: int) -> dict[str, Any]:
        """The current categories (and `other`), each with the number of images currently assigned it."""
        taxonomy, version = self.taxonomy(workspace)
        with self.database.session() as session:
            counts = cats.assigned_counts(session, workspace)
        items = [
            {
                "name": c.name,
                "description": c.description,
                "parent": c.parent,
                "images": counts.get(c.name.casefold(), 0),
            }
            for c in taxonomy.categories
        ]
        items.append(
            {
                "name": OTHER,
                "description": "images that fit no category of the taxonomy",
                "parent": None,
                "images": counts.get(OTHER, 0),
            }
        )
        return {"taxonomy": taxonomy.name, "version": version, "categories": items}

    def counts(
        self, workspace: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[date, str, int]]:
        """(day, category, images) with the taxonomy's spelling of each category name."""
        taxonomy, _ = self.taxonomy(workspace)
        spelled = {name.casefold(): name for name in (*taxonomy.names, OTHER)}
        with self.database.session() as session:
            rows = cats.category_counts(session, workspace, since, until)
        return [(day, spelled.get(name, name), n) for day, name, n in rows]


def _full_text(analysis: Analysis | None) -> str:
    """The OCR text of a stored `text` analysis ("" when there is none)."""
    result = analysis.loaded if analysis is not None else None
    return result.full_text if isinstance(result, TextResult) else ""
