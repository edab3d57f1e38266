"""The analyzer contract: preprocess -> _forward -> postprocess, batched, lazily loaded.

Only `_forward` touches the inference runtime, so pre/post-processing stay testable without a model.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from PIL import Image
from pydantic import TypeAdapter

from feedlens.config import Settings
from feedlens.core.results import AnalyzerResult
from feedlens.runtime.store import ModelStore

ResultT = TypeVar("ResultT", bound=AnalyzerResult)
BatchT = TypeVar("BatchT")


class Analyzer(ABC, Generic[BatchT, ResultT]):
    """One recognition capability.

    Identity is class-level: `name` (stable, used in CLI/API/storage), `code_version` (bump when pre- or
    post-processing changes results), `artifacts` (model store names it loads), `input_size` (the shorter
    image side, px, it needs from the decoder) and `result_type`.
    """

    name: ClassVar[str]
    code_version: ClassVar[str]
    artifacts: ClassVar[tuple[str, ...]]
    input_size: ClassVar[int]
    result_type: ClassVar[type[Any]]

    def __init__(self, store: ModelStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._loaded = False
        self._load_lock = threading.Lock()

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
    def preprocess(self, images: Sequence[Image.Image]) -> BatchT: ...

    @abstractmethod
    def _forward(self, batch: BatchT) -> Any: ...

    @abstractmethod
    def postprocess(self, outputs: Any, images: Sequence[Image.Image]) -> list[ResultT]: ...

    def __call__(self, images: Sequence[Image.Image]) -> list[ResultT]:
        """Analyse decoded RGB images, in chunks of `settings.batch_size`; one result per image, in order."""
        self.load()
        results: list[ResultT] = []
        step = self.settings.batch_size
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            results.extend(self.postprocess(self._forward(self.preprocess(chunk)), chunk))
        return results
