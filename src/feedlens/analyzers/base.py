"""The analyzer contract: preprocess -> _forward -> postprocess, batched, lazily loaded.

Only `_forward` touches the inference runtime, so pre/post-processing stay testable without a model.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from PIL import Image
from pydantic import TypeAdapter

from feedlens.config import Settings
from feedlens.core.results import AnalyzerResult
from feedlens.runtime.store import ModelStore

ResultT = TypeVar("ResultT", bound=AnalyzerResult)
BatchT = TypeVar("BatchT")

Upstream = Mapping[str, Sequence[Any]]
"""Results of the analyzers named in `depends_on`, by name, aligned with the images being analysed."""
NO_UPSTREAM: Upstream = {}


class Analyzer(ABC, Generic[BatchT, ResultT]):
    """One recognition capability.

    Identity is class-level: `name` (stable, used in CLI/API/storage), `code_version` (bump when pre- or
    post-processing changes results), `artifacts` (model store names it loads), `input_size` (the shorter
    image side, px, it needs from the decoder) and `result_type`.

    `depends_on` names analyzers whose results this one reuses (faces -> emotions, one detector shared by
    safety and faces): the pipeline runs those first and passes their results as `upstream`. `internal`
    analyzers are such shared stages: run when something depends on them, not reported unless asked for.
    """

    name: ClassVar[str]
    code_version: ClassVar[str]
    artifacts: ClassVar[tuple[str, ...]]
    input_size: ClassVar[int]
    result_type: ClassVar[type[Any]]
    depends_on: ClassVar[tuple[str, ...]] = ()
    # Analyzers whose results this one draws on (labels: Person from faces, objects and poses): they join a
    # pipeline when switched on (FEEDLENS_ANALYZERS), and each one absent counts as None per image.
    uses: ClassVar[tuple[str, ...]] = ()
    # Results folded in only when that analyzer runs in the pipeline anyway, never a reason to run it
    # (embedding reads OCR text, but asking for search vectors must not start OCR).
    reads: ClassVar[tuple[str, ...]] = ()
    # False: called directly without some `depends_on` results, the analyzer works with what it has (each
    # missing one counts as None per image); the pipeline still runs every dependency first.
    requires_upstream: ClassVar[bool] = True
    # The model whose measured best batch (runtime/calibration.py) sets the chunk size, and the per-sample
    # input shape to time it with where the model leaves it open; None: the FEEDLENS_BATCH_SIZE setting.
    batch_artifact: ClassVar[str | None] = None
    batch_sample: ClassVar[tuple[int, ...] | None] = None
    internal: ClassVar[bool] = False

    @property
    def upstream_names(self) -> tuple[str, ...]:
        """Every analyzer whose results this one is handed (hard dependencies, then optional ones)."""
        return (*self.depends_on, *self.uses, *self.reads)

    def __init__(self, store: ModelStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._loaded = False
        self._load_lock = threading.Lock()
        self._batch_size: int | None = None

    @property
    def version(self) -> str:
        """Code version plus the version of every artifact: results are stored and compared per version."""
        parts = [f"{a}@{self.store.manifest.get(a).version}" for a in self.artifacts]
        return "+".join([self.code_version, *parts])

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of one result's `to_dict()` form, generated from the result dataclass."""
        schema: dict[str, Any] = TypeAdapter(cls.result_type).json_schema(mode="serialization")
        schema["$id"] = cls.result_type.SCHEMA
        return schema

    def batch_model(self) -> str | None:
        """The artifact whose calibrated batch size this instance uses (labels: its configured backbone)."""
        return self.batch_artifact

    @property
    def batch_size(self) -> int:
        """Images per forward pass: FEEDLENS_BATCH_SIZE when set, else the batch measured fastest per image
        for `batch_model()` on this machine (`feedlens store calibrate`), else the setting's default."""
        if self._batch_size is None:
            chosen = self.settings.batch_size
            model = self.batch_model()
            if "batch_size" not in self.settings.model_fields_set and model is not None:
                from feedlens.runtime.calibration import BatchSizes

                key = f"{model}@{self.store.manifest.get(model).version}"
                measured = BatchSizes(self.store.root).get(key, self.settings.threads_per_worker)
                chosen = measured or chosen
            self._batch_size = chosen
        return self._batch_size

    def decode_side(self) -> int:
        """The shorter side this instance needs from the decoder (its settings may raise `input_size`)."""
        return self.input_size

    def load(self) -> None:
        """Load models once per process (thread-safe); later calls are free."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> BatchT: ...

    @abstractmethod
    def _forward(self, batch: BatchT) -> Any: ...

    @abstractmethod
    def postprocess(
        self, outputs: Any, images: Sequence[Image.Image], upstream: Upstream
    ) -> list[ResultT]: ...

    def __call__(self, images: Sequence[Image.Image], upstream: Upstream = NO_UPSTREAM) -> list[ResultT]:
        """Analyse decoded RGB images, in chunks of `batch_size`; one result per image, in order.

        `upstream` must hold, for every name in `depends_on`, one result per image.
        """
        missing = [d for d in self.depends_on if len(upstream.get(d, ())) != len(images)]
        if missing and self.requires_upstream:
            raise ValueError(f"{self.name} needs results of {missing} for each image")
        optional = (*self.uses, *self.reads)
        absent = [*missing, *(u for u in optional if len(upstream.get(u, ())) != len(images))]
        upstream = {**upstream, **{d: [None] * len(images) for d in absent}}
        self.load()
        results: list[ResultT] = []
        step = self.batch_size
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            part = {d: upstream[d][start : start + step] for d in self.upstream_names}
            results.extend(self.postprocess(self._forward(self.preprocess(chunk, part)), chunk, part))
        return results
