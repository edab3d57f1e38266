"""Batch sizes by measurement: the choice rule, which models can be timed, the record per machine and
threads, and that analyzers take the recorded batch unless FEEDLENS_BATCH_SIZE says otherwise."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from feedlens.analyzers.body_regions import BodyRegionsAnalyzer
from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.config import Settings
from feedlens.runtime.calibration import BatchSizes, Measurement, dynamic_input, machine_key, measure
from feedlens.services.factory import Services


def identity_model(path: Path, shape: list[int | str]) -> Path:
    """An ONNX graph y = x + 1 with input shape `shape` (strings are dynamic dimensions)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "g", [x], [y], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_the_smallest_batch_within_five_percent_of_the_fastest_wins() -> None:
    assert Measurement.choose("m", {1: 10.0, 2: 8.2, 4: 8.0, 8: 9.0}).batch == 2
    assert Measurement.choose("m", {1: 5.6, 4: 5.9, 16: 10.2}).batch == 1  # EfficientNet on 2 cores
    assert Measurement.choose("m", {1: 15.6, 4: 14.8, 16: 18.0}).batch == 4  # NudeNet


def test_only_models_with_a_dynamic_batch_can_be_timed(tmp_path: Path) -> None:
    def session(shape: list[int | str]) -> ort.InferenceSession:
        return ort.InferenceSession(str(identity_model(tmp_path / "m.onnx", shape)))

    found = dynamic_input(session(["n", 3, 8, 8]))
    assert found is not None and found[:2] == ("x", (3, 8, 8))
    assert dynamic_input(session([1, 3, 8, 8])) is None  # a fixed batch: nothing to choose
    assert dynamic_input(session(["n", 3, "h", "w"])) is None  # no size to time it at ...
    sized = dynamic_input(session(["n", 3, "h", "w"]), (3, 16, 16))  # ... unless the analyzer says
    assert sized is not None and sized[1] == (3, 16, 16)
    assert dynamic_input(session(["n", 3, 8, 8]), (3, 16, 16)) is None  # contradicts the model


def test_measure_times_a_real_model_and_the_record_is_per_machine_and_threads(tmp_path: Path) -> None:
    model = identity_model(tmp_path / "m.onnx", ["n", 3, 32, 32])
    measured = measure(model, "tiny", threads=1, candidates=(1, 2, 4))
    assert measured is not None and set(measured.ms_per_image) == {1, 2, 4}
    assert measured.batch in (1, 2, 4) and all(ms > 0 for ms in measured.ms_per_image.values())
    sizes = BatchSizes(tmp_path)
    assert sizes.get("tiny@1", 1) is None
    sizes.record("tiny@1", 1, Measurement("tiny", {1: 3.0, 4: 1.0}, 4))
    assert sizes.get("tiny@1", 1) == 4
    assert sizes.get("tiny@1", 2) is None  # measured with one thread: says nothing about two
    assert machine_key(1) != machine_key(2)
    (tmp_path / ".cache" / "batch-sizes.json").write_text("{not json")
    assert BatchSizes(tmp_path).get("tiny@1", 1) is None  # a damaged record is re-measured, not trusted


def test_analyzers_use_the_recorded_batch_unless_the_setting_is_given(
    settings: Settings, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        BatchSizes, "__init__", lambda self, _root: setattr(self, "path", tmp_path / "b.json")
    )
    version = services.store.manifest.get("nudenet-320n-onnx").version
    BatchSizes(tmp_path).record(
        f"nudenet-320n-onnx@{version}", settings.threads_per_worker, Measurement("n", {4: 1.0}, 4)
    )
    assert BodyRegionsAnalyzer(services.store, settings).batch_size == 4
    assert LabelsAnalyzer(services.store, settings).batch_size == settings.batch_size  # none recorded
    given = Settings(**{**settings.model_dump(), "batch_size": 7})  # FEEDLENS_BATCH_SIZE=7
    assert "batch_size" in given.model_fields_set
    assert BodyRegionsAnalyzer(services.store, given).batch_size == 7
