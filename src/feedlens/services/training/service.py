"""Training for a workspace: datasets from its labels (or, from the CLI, a folder/CSV/COCO file), training
and evaluation through `training.recipe`, artifacts into the blob store, versions into the registry, and
Grad-CAM explanations of any version's predictions."""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from feedlens.config import Settings
from feedlens.core.training import WORKSPACE
from feedlens.images import ImageDecoder
from feedlens.runtime.store import ModelStore
from feedlens.services.categories import CategoryService
from feedlens.services.training.categorising import RegistryCategoryModels
from feedlens.services.training.registry import ModelRegistry, RegistryError, check_task
from feedlens.services.training.serving import ModelServer
from feedlens.storage import categories as cats
from feedlens.storage import repositories as repo
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database
from feedlens.training import datasets
from feedlens.training.crossval import finetune_shortfall
from feedlens.training.datasets import DatasetError, LabelledDataset, Problem, ProblemCode, Resolver
from feedlens.training.recipe import ARTIFACTS, TrainOptions, TrainOutcome, evaluate_model, train_model
from feedlens.training.report import EvaluationReport, ModelInfo

log = logging.getLogger(__name__)
WEIGHTS = "efficientnet-lite0-pth"  # the backbone every model starts from (model store artifact)
REPORT_ARTIFACTS = ("metrics", "report")


def dataset_from_path(path: Path) -> LabelledDataset:
    """A folder (ImageFolder), a `.csv` (path,label) or a `.json` (COCO-style classification)."""
    path = Path(path)
    if path.is_dir():
        return datasets.from_folder(path)
    if path.suffix.lower() == ".csv":
        return datasets.from_csv(path)
    if path.suffix.lower() == ".json":
        return datasets.from_coco(path)
    if not path.exists():
        raise DatasetError([Problem(ProblemCode.MISSING_FILE, f"{path}: no such file or folder")])
    raise DatasetError(
        [Problem(ProblemCode.MALFORMED, f"{path}: give a folder (ImageFolder), a .csv or a COCO .json")]
    )


class TrainingService:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        decoder: ImageDecoder,
        store: ModelStore,
        settings: Settings,
        categories: CategoryService | Callable[[], CategoryService],
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.decoder = decoder
        self.store = store
        self.settings = settings
        # a factory defers loading the text encoder the category service needs until a dataset is built
        # from labels: `feedlens models promote` should not pay for it
        self._categories = categories
        self.registry = ModelRegistry(database)
        self.server = ModelServer(database, blobs, decoder, self.registry)
        self.category_models = RegistryCategoryModels(self)

    @property
    def categories(self) -> CategoryService:
        if not isinstance(self._categories, CategoryService):
            self._categories = self._categories()
        return self._categories

    # -- datasets ------------------------------------------------------------------------------------------
    def single_labels(self, workspace: int) -> tuple[dict[str, str], list[str], dict[str, str]]:
        """(image id -> its one category, the categories that have such images in taxonomy order, image id
        -> stored blob) for the workspace's images labelled with exactly one current category. Images with
        several categories are what `from_labels` drops; labels of categories no longer in the taxonomy
        do not count."""
        taxonomy, _ = self.categories.taxonomy(workspace)
        with self.database.session() as session:
            labelled = cats.workspace_labels(session, workspace)
            stored = {i.id: i.blob for i in repo.get_images(session, workspace, sorted(labelled))}
        names = set(taxonomy.names)
        single = {
            image_id: next(iter(pos))
            for image_id, (pos, _) in labelled.items()
            if image_id in stored and len(pos) == 1 and next(iter(pos)) in names
        }
        present = set(single.values())
        return single, [n for n in taxonomy.names if n in present], stored

    def workspace_dataset(self, workspace: int) -> tuple[LabelledDataset, Resolver]:
        """The workspace's positive category labels as a single-label dataset (`single_labels`); sources are
        image ids, resolved to the stored copies. Fewer than two categories: `DatasetError`."""
        single, classes, stored = self.single_labels(workspace)
        data = datasets.from_labels(single.items(), classes, provenance=f"{WORKSPACE}:{workspace}")

        def resolve(image_id: str) -> Path:
            return self.blobs.path("originals", stored[image_id])

        return data, resolve

    def dataset(self, workspace: int, source: str | Path) -> tuple[LabelledDataset, Resolver | None]:
        if str(source) == WORKSPACE:
            return self.workspace_dataset(workspace)
        return dataset_from_path(Path(source)), None

    # -- training ------------------------------------------------------------------------------------------
    def check_finetune(self, workspace: int) -> None:
        """Refuse fine-tuning on the workspace's labels up front (`not_enough_labels`, 409) when a category
        has too few: the API checks before it queues a run."""
        single, classes, _ = self.single_labels(workspace)
        counts = {name: sum(1 for c in single.values() if c == name) for name in classes}
        shortfall = finetune_shortfall(counts) if counts else None
        if shortfall is not None:
            raise RegistryError("not_enough_labels", shortfall)

    def _baseline(self, workspace: int, task: str, classes: list[str]) -> tuple[Any, ModelInfo | None]:
        """The production model as the report's comparison, when it predicts the same classes."""
        deployment = self.registry.deployment(workspace, task)
        rows = self.registry.rows(workspace, task, [deployment.production_id])
        row = rows.get(deployment.production_id) if deployment.production_id else None
        if row is None or list(row.classes) != classes:
            return None, None
        classifier = self.server.classifier(row)
        return classifier.predict_proba, ModelInfo(
            f"v{row.version} (production)", row.dataset_hash, row.params
        )

    def train(
        self,
        workspace: int,
        source: str | Path = WORKSPACE,
        options: TrainOptions | None = None,
        *,
        task: str = "categories",
        created_by: str = "",
    ) -> dict[str, Any]:
        """Train a new version from `source` (WORKSPACE or a path), evaluate, compress, register it."""
        check_task(task)
        options = options or TrainOptions()
        data, resolve = self.dataset(workspace, source)
        # explicit fine-tuning only; the feedback loop (stable split) gates its own retraining
        shortfall = finetune_shortfall(data.counts()) if options.mode == "finetune" else None
        if shortfall is not None and options.split == "stratified":
            raise RegistryError("not_enough_labels", shortfall)
        baseline, baseline_info = self._baseline(workspace, task, list(data.classes))
        work = Path(tempfile.mkdtemp(prefix="train-", dir=self._scratch()))
        try:
            outcome = train_model(
                data,
                self.decoder,
                self.store.path(WEIGHTS),
                work,
                options,
                resolve=resolve,
                baseline=baseline,
                baseline_info=baseline_info,
                # the number register() will most likely give (a concurrent training could take it first)
                version=f"v{self.registry.next_version(workspace, task)}",
            )
            return self._register(workspace, task, outcome, options, created_by)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _scratch(self) -> Path:
        folder = (self.settings.data_dir or self.settings.home) / "scratch"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _register(
        self, workspace: int, task: str, outcome: TrainOutcome, options: TrainOptions, created_by: str
    ) -> dict[str, Any]:
        artifacts = {}
        for name, file_name in ARTIFACTS.items():
            path = outcome.folder / file_name
            if path.exists():
                kind = "reports" if name in REPORT_ARTIFACTS else "models"
                data = path.read_bytes()
                # the suffix stays: runtimes are chosen by it (runtime/sessions.py)
                blob = hashlib.sha256(data).hexdigest() + "".join(path.suffixes[-1:])
                self.blobs.put_as(kind, blob, data)
                artifacts[name] = blob
        compression = outcome.info.get("compression") or {}
        return self.registry.register(
            workspace,
            task,
            mode=options.mode,
            dataset_hash=outcome.dataset_hash,
            provenance=outcome.provenance,
            classes=outcome.classes,
            params=options.to_dict(),
            metrics={**outcome.metrics, "int8": _int8_summary(compression)},
            training=outcome.info,
            artifacts=artifacts,
            runtime="int8" if compression.get("kept") else "fp32",
            created_by=created_by,
        )

    # -- evaluation and reports ----------------------------------------------------------------------------
    def evaluate(
        self,
        workspace: int,
        version: int,
        source: str | Path = WORKSPACE,
        *,
        against: int | None = None,
        task: str = "categories",
    ) -> tuple[EvaluationReport, str]:
        """Evaluate a version on a dataset (its test split if it is the data it was trained on), side by side
        with version `against` (default: production, when it is another version with the same classes)."""
        digest, row = self.registry.artifact(workspace, task, version, "torch")
        data, resolve = self.dataset(workspace, source)
        model = _load_torch(self.blobs.path("models", digest))
        baseline, baseline_info = None, None
        other_version = against
        if other_version is None:
            production = self.registry.deployment(workspace, task).production_id
            prod_rows = self.registry.rows(workspace, task, [production])
            if production in prod_rows and prod_rows[production].id != row.id:
                other_version = prod_rows[production].version
        if other_version is not None:
            _, other = self.registry.artifact(workspace, task, other_version, "torch")
            if list(other.classes) != list(row.classes):
                if against is not None:
                    raise RegistryError(
                        "classes_mismatch", f"versions {version} and {against} predict different classes"
                    )
            else:
                baseline = self.server.classifier(other).predict_proba
                baseline_info = ModelInfo(f"v{other.version}", other.dataset_hash, other.params)
        options = TrainOptions(**{k: v for k, v in row.params.items() if k in _SPLIT_KEYS})
        return evaluate_model(
            model,
            data,
            self.decoder,
            resolve=resolve,
            trained_on=row.dataset_hash,
            options=options,
            info=ModelInfo(f"v{row.version}", row.dataset_hash, row.params),
            baseline=baseline,
            baseline_info=baseline_info,
        )

    def report(self, workspace: int, version: int, kind: str, task: str = "categories") -> bytes:
        """The stored training report of a version: `report` (HTML page) or `metrics` (JSON)."""
        if kind not in REPORT_ARTIFACTS:
            raise RegistryError("artifact_not_found", f"reports are {' or '.join(REPORT_ARTIFACTS)}")
        digest, _ = self.registry.artifact(workspace, task, version, kind)
        return self.blobs.get("reports", digest)

    # -- explanations --------------------------------------------------------------------------------------
    def explain(
        self,
        workspace: int,
        image: Image.Image,
        *,
        version: int | None = None,
        category: str | None = None,
        task: str = "categories",
    ) -> tuple[bytes, dict[str, Any]]:
        """Grad-CAM of `category` (default: the predicted one) for `image` by `version` (default:
        production), overlaid on the image: (PNG bytes, {version, category, score})."""
        from feedlens.training.explain import gradcam, overlay  # captum loads only when asked

        if version is None:
            production = self.registry.deployment(workspace, task).production_id
            rows = self.registry.rows(workspace, task, [production])
            if production not in rows:
                raise RegistryError("no_production_model", "no model in production: name a version")
            version = rows[production].version
        digest, row = self.registry.artifact(workspace, task, version, "torch")
        model = _load_torch(self.blobs.path("models", digest))
        proba = model.predict_proba([image])[0]
        if category is None:
            index = int(proba.argmax())
        elif category in row.classes:
            index = list(row.classes).index(category)
        else:
            raise RegistryError(
                "unknown_category",
                f"version {version} does not predict {category!r} (classes: {row.classes})",
            )
        heat = gradcam(model, image, index)
        buffer = io.BytesIO()
        overlay(image, heat).save(buffer, format="PNG")
        info = {"version": version, "category": row.classes[index], "score": float(proba[index])}
        return buffer.getvalue(), info


_SPLIT_KEYS = ("seed", "val_fraction", "test_fraction", "split")


def _int8_summary(compression: dict[str, Any]) -> dict[str, Any] | None:
    if not compression:
        return None
    keys = ("kept", "accuracy_change_points", "speedup", "fp32_ms_per_image", "int8_ms_per_image")
    return {k: compression.get(k) for k in keys}


def _load_torch(path: Path) -> Any:
    from feedlens.training.network import TrainedClassifier

    return TrainedClassifier.load(path, threads=None)
