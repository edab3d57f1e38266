"""EfficientNet-Lite2 in the model store: its ONNX export against torch on real photos, and the exports'
byte stability (Lite0's artifact must not change because the exporter now serves two variants)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from feedlens.core.imageops import center_crop, resize_shorter_side, to_nchw
from feedlens.runtime.conversions import (
    EFFICIENTNET_LITE_INPUT_SIZES,
    export_efficientnet_lite0_onnx,
    export_efficientnet_lite2_onnx,
)
from feedlens.runtime.store import Converter, sha256_file
from feedlens.services.factory import Services

SIZE = EFFICIENTNET_LITE_INPUT_SIZES["efficientnet-lite2"]
RESIZE = SIZE + 32  # TensorFlow EfficientNet's evaluation crop (Lite0: 224 of 256)
CAT_CLASSES = {"n02123045", "n02123159", "n02123394", "n02123597", "n02124075"}  # tabby ... Egyptian cat
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png")


def _batch(sample_dir: Path) -> np.ndarray:
    """The photos as float32 (3, 3, 260, 260): shorter side to 292, centre crop, (x - 127) / 128."""
    crops = []
    for name in PHOTOS:
        with Image.open(sample_dir / name) as im:
            resized = resize_shorter_side(im.convert("RGB"), RESIZE, Image.Resampling.BILINEAR)
            crops.append(center_crop(resized, SIZE))
    return to_nchw(crops, 127.0, 128.0)


@pytest.mark.slow
def test_lite2_onnx_matches_torch_and_sees_a_cat(services: Services, sample_dir: Path) -> None:
    store = services.store
    path = store.pull("efficientnet-lite2-onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input", ["batch", 3, SIZE, SIZE])]
    assert [o.name for o in session.get_outputs()] == ["logits", "features"]

    x = _batch(sample_dir)
    logits, features = session.run(None, {"input": x})
    assert logits.shape == (len(PHOTOS), 1000) and features.shape == (len(PHOTOS), 1280)
    with contextlib.redirect_stdout(io.StringIO()):  # "Loaded pretrained weights"
        net = EfficientNet.from_pretrained(
            "efficientnet-lite2", weights_path=str(store.path("efficientnet-lite2-pth"))
        ).eval()
    with torch.no_grad():
        expected_logits = net(torch.from_numpy(x)).numpy()
        expected_features = net._avg_pooling(net.extract_features(torch.from_numpy(x))).flatten(1).numpy()
    np.testing.assert_allclose(logits, expected_logits, atol=1e-3)
    np.testing.assert_allclose(features, expected_features, atol=1e-3)
    (single,) = session.run(["logits"], {"input": x[:1]})  # the batch axis is dynamic
    np.testing.assert_allclose(single, logits[:1], atol=1e-4)

    wnids = store.path("imagenet-synsets").read_text().split()
    top3 = {wnids[i] for i in np.argsort(-logits[0])[:3]}
    assert top3 & CAT_CLASSES, top3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "export"),
    [
        ("efficientnet-lite0", export_efficientnet_lite0_onnx),
        ("efficientnet-lite2", export_efficientnet_lite2_onnx),
    ],
)
def test_export_is_byte_stable(services: Services, tmp_path: Path, name: str, export: Converter) -> None:
    """A fresh export equals the store's recorded one: the recorded hashes stay meaningful (and Lite0's
    artifact is the one it was before the exporter took a variant and an input size)."""
    store = services.store
    recorded = store.pull(f"{name}-onnx")
    out = tmp_path / "again.onnx"
    export({f"{name}-pth": store.path(f"{name}-pth")}, out)
    assert sha256_file(out) == store.expected_sha256(store.manifest.get(f"{name}-onnx"))
    assert sha256_file(out) == sha256_file(recorded)
