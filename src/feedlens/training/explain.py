"""Class-activation heatmaps (Grad-CAM, via captum) for a prediction, and their overlay on the image.

Grad-CAM (Selvaraju et al., 2017) weights the last convolutional activations (1280 channels, 1/32 of the
input's resolution) by the class score's mean gradient per channel, keeps the positive part and scales it
up to the image. The model sees the whole image here, not the centre crop it classifies: shorter side
224 px, longer side scaled alike and rounded to a multiple of 32 (the network's stride, so its padding
stays as trained), so the heatmap covers every pixel of the picture the user looks at.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from PIL import Image

from feedlens.analyzers.labels import CROP, INPUT_MEAN, INPUT_STD
from feedlens.core.imageops import to_nchw
from feedlens.training.network import ClassifierNet, TrainedClassifier, torch_threads

STRIDE = 32
MAX_ASPECT = 4.0  # a wider panorama is squeezed to 4:1 rather than run at unbounded width


def explain_size(width: int, height: int, short: int = CROP) -> tuple[int, int]:
    """(width, height) the network sees: shorter side `short`, aspect kept up to MAX_ASPECT, x STRIDE."""
    scale = short / min(width, height)
    longest = short * MAX_ASPECT

    def side(n: int) -> int:
        return max(STRIDE, round(min(n * scale, longest) / STRIDE) * STRIDE)

    return side(width), side(height)


def gradcam(model: TrainedClassifier | ClassifierNet, image: Image.Image, class_index: int) -> np.ndarray:
    """Grad-CAM of `class_index` for `image`: float32 (H, W) at the image's size, in [0, 1].

    1 marks the region that raises the class score most; an all-zero map means no region raises it.
    """
    net = model.net if isinstance(model, TrainedClassifier) else model
    threads = model.threads if isinstance(model, TrainedClassifier) else None
    if not 0 <= class_index < net.num_classes:
        raise ValueError(f"class_index {class_index} is outside the model's {net.num_classes} classes")
    rgb = image.convert("RGB")
    resized = rgb.resize(explain_size(*rgb.size), Image.Resampling.BILINEAR)
    x = torch.from_numpy(to_nchw([resized], INPUT_MEAN, INPUT_STD)).requires_grad_(True)
    net.eval()
    with torch_threads(threads):
        cam = LayerGradCam(net, net.cam_layer).attribute(x, target=class_index, relu_attributions=True)
        # (1, 1, h, w) -> the image's own size; bilinear, as the original paper upsamples
        full = LayerAttribution.interpolate(
            cam.detach(), (rgb.height, rgb.width), interpolate_mode="bilinear"
        )
    heat = full[0, 0].clamp(min=0.0).numpy().astype(np.float32)
    peak = float(heat.max())
    return heat / peak if peak > 0 else np.zeros_like(heat)


def overlay(
    image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet"
) -> Image.Image:
    """The heatmap in a matplotlib colormap, alpha-blended over the image (RGB, the image's size)."""
    from matplotlib import colormaps  # imported here: matplotlib takes a while to load

    rgb = image.convert("RGB")
    if heatmap.shape != (rgb.height, rgb.width):
        raise ValueError(
            f"heatmap shape {heatmap.shape} does not match the image ({rgb.height}, {rgb.width})"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    colours = colormaps[colormap](np.clip(heatmap, 0.0, 1.0))[..., :3] * 255.0  # (H, W, 3)
    blended = (1.0 - alpha) * np.asarray(rgb, dtype=np.float32) + alpha * colours
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))
