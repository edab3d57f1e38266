"""ONNX export of a trained classifier and int8 compression with its keep-or-drop report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from feedlens.runtime.sessions import open_session
from feedlens.services.factory import Services
from feedlens.training.export import OnnxClassifier, compress, export_onnx
from feedlens.training.inputs import eval_array, load_image
from feedlens.training.network import ClassifierNet, TrainedClassifier, load_backbone
from feedlens.training.probe import probe
from tests.training.stamp_data import StampSet, stamp_set


@pytest.fixture(scope="module")
def data() -> StampSet:
    return stamp_set()


@pytest.fixture(scope="module")
def weights(services: Services) -> Path:
    return services.store.path("efficientnet-lite0-pth")


@pytest.fixture(scope="module")
def model(data: StampSet, weights: Path) -> TrainedClassifier:
    return probe(data.train, data.val, data.classes, weights, threads=2)


@pytest.fixture(scope="module")
def fp32(model: TrainedClassifier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(model, tmp_path_factory.mktemp("export") / "model.onnx")


def test_onnx_matches_torch(model: TrainedClassifier, fp32: Path, data: StampSet) -> None:
    images = list(data.test.images)
    onnx = OnnxClassifier(fp32, data.classes)
    np.testing.assert_allclose(onnx.predict_proba(images), model.predict_proba(images), atol=1e-4)
    session = open_session(fp32, threads=1)
    assert session.input_names == ("input",)
    batch = eval_array([load_image(im) for im in images[:5]])
    logits, features = session.run({"input": batch})
    with torch.no_grad():
        expected_logits, expected_features = model.net.forward_with_features(torch.from_numpy(batch))
    np.testing.assert_allclose(logits, expected_logits.numpy(), atol=1e-3)
    np.testing.assert_allclose(features, expected_features.numpy(), atol=1e-3)


def test_a_finetune_network_exports_too(weights: Path, tmp_path: Path, chelsea: Image.Image) -> None:
    torch.manual_seed(0)  # the new head's random weights
    net = ClassifierNet(load_backbone(weights), 3, train_blocks=2)
    model = TrainedClassifier(net, ("a", "b", "c"), mode="finetune")
    onnx = OnnxClassifier(export_onnx(model, tmp_path / "ft.onnx"), model.class_names)
    np.testing.assert_allclose(onnx.predict_proba([chelsea]), model.predict_proba([chelsea]), atol=1e-4)


def test_int8_report(fp32: Path, model: TrainedClassifier, data: StampSet, tmp_path: Path) -> None:
    int8 = tmp_path / "model.int8.onnx"
    report = compress(fp32, data.classes, list(data.train.images), data.test, out=int8, rounds=2)
    truth = np.asarray(data.test.labels)
    torch_accuracy = float((model.predict_proba(data.test.images).argmax(axis=1) == truth).mean())
    assert report["fp32_accuracy"] == pytest.approx(torch_accuracy)
    assert int8.is_file() == report["kept"]
    fp32_top1 = OnnxClassifier(fp32, data.classes).predict_proba(data.test.images).argmax(axis=1)
    if report["kept"]:  # measured again, independently of compress
        again = OnnxClassifier(int8, data.classes).predict_proba(data.test.images).argmax(axis=1)
        assert report["int8_accuracy"] == pytest.approx(float((again == truth).mean()))
        assert report["top1_agreement"] == pytest.approx(float((again == fp32_top1).mean()))
        assert report["model"] == str(int8)
        assert report["int8_accuracy"] >= report["fp32_accuracy"] - 0.01  # within the default 1-point bound
    assert report["max_loss_points"] == 1.0  # the default bound
    assert report["speedup"] > 0 and report["int8_bytes"] < report["fp32_bytes"] / 2
    assert report["test_images"] == len(data.test) and report["calibration_images"] == len(data.train)


def test_int8_calibrated_on_unrepresentative_images_is_dropped(
    fp32: Path, data: StampSet, tmp_path: Path
) -> None:
    """Calibrated on one flat grey image, every activation range is far too narrow: int8 is refused."""
    int8 = tmp_path / "grey.int8.onnx"
    grey = [Image.new("RGB", (256, 256), (128, 128, 128))]
    report = compress(
        fp32, data.classes, grey, data.test, out=int8, rounds=1, agreement_images=list(data.train.images)
    )
    assert report["accuracy_change_points"] < -report["max_loss_points"]
    assert report["agreement_images"] == len(data.test) + len(data.train)
    assert report["agreement"] < report["min_agreement"]  # measured 0.25: this check alone refuses it
    assert not report["kept"] and report["model"] == str(fp32) and not int8.exists()
    with pytest.raises(ValueError, match="max_loss_points"):
        compress(fp32, data.classes, grey, data.test, out=int8, max_loss_points=-1.0)
