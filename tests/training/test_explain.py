"""Grad-CAM heatmaps: shape, range, and that they point at the object the class is about."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage
from PIL import Image

from feedlens.services.factory import Services
from feedlens.training.explain import explain_size, gradcam, overlay
from feedlens.training.network import ClassifierNet, TrainedClassifier, load_backbone

# chelsea.png (451 x 300) is a close-up of a tabby cat's head. Its face, from beside the left eye to beyond
# the right eye and from the brow to the chin, lies in this box (x0, y0, x1, y1; judged once by eye from
# the eyes at about (170, 115) and (320, 135) and the nose at (265, 240)). It covers 46% of the photo. The
# strip right of x = 400 is the blurred room behind the cat.
CAT_FACE = (110, 60, 370, 300)
BACKGROUND_X = 400


@pytest.fixture(scope="module")
def imagenet(services: Services) -> TrainedClassifier:
    """The original model with its ImageNet head."""
    names = [c["name"] for c in json.loads(services.store.path("imagenet-hierarchy").read_text())["classes"]]
    net = ClassifierNet(load_backbone(services.store.path("efficientnet-lite0-pth")), None, None)
    return TrainedClassifier(net, names, mode="imagenet", threads=2)


def peak(heat: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(heat.argmax()), heat.shape)
    return int(x), int(y)


def inside(point: tuple[int, int], box: tuple[int, int, int, int]) -> bool:
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]


@pytest.mark.parametrize("name", ["tabby", "tiger cat"])
def test_heatmap_peaks_on_the_cat(imagenet: TrainedClassifier, chelsea: Image.Image, name: str) -> None:
    heat = gradcam(imagenet, chelsea, imagenet.class_names.index(name))
    assert heat.shape == (chelsea.height, chelsea.width) and heat.dtype == np.float32
    assert float(heat.min()) >= 0.0 and float(heat.max()) == pytest.approx(1.0)
    assert inside(peak(heat), CAT_FACE), peak(heat)
    x0, y0, x1, y1 = CAT_FACE
    assert heat[y0:y1, x0:x1].mean() > 2 * heat[:, BACKGROUND_X:].mean()


def test_heatmap_finds_a_cat_pasted_off_centre(imagenet: TrainedClassifier, chelsea: Image.Image) -> None:
    """The cat photo, shrunk, on a brick wall: where the cat is is known exactly, and it is not the centre."""
    brick = Path(skimage.__file__).parent / "data" / "brick.png"  # a real photo of a brick wall
    wall = Image.open(brick).convert("RGB").resize((600, 400))
    box = (340, 30, 340 + 226, 30 + 150)  # 14% of the picture, top right
    wall.paste(chelsea.resize((box[2] - box[0], box[3] - box[1])), box[:2])
    heat = gradcam(imagenet, wall, imagenet.class_names.index("tabby"))
    assert heat.shape == (400, 600)
    assert inside(peak(heat), box), peak(heat)
    mask = np.zeros(heat.shape, dtype=bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    assert heat[mask].mean() > 3 * heat[~mask].mean()


def test_heatmap_of_any_image_size(imagenet: TrainedClassifier, chelsea: Image.Image) -> None:
    odd = chelsea.resize((517, 333)).convert("L")  # odd sizes, grey: converted, then scaled to its own size
    heat = gradcam(imagenet.net, odd, 0)
    assert heat.shape == (333, 517) and heat.min() >= 0.0 and heat.max() <= 1.0
    assert explain_size(517, 333) == (352, 224) and explain_size(4000, 100) == (896, 224)
    with pytest.raises(ValueError, match="outside the model's 1000 classes"):
        gradcam(imagenet, chelsea, 1000)


def test_overlay_blends_the_colormap(chelsea: Image.Image) -> None:
    heat = np.tile(np.linspace(0, 1, chelsea.width, dtype=np.float32), (chelsea.height, 1))
    assert np.array_equal(np.asarray(overlay(chelsea, heat, alpha=0.0)), np.asarray(chelsea))
    full = np.asarray(overlay(chelsea, heat, alpha=1.0), dtype=np.int16)
    assert full.shape == (chelsea.height, chelsea.width, 3)
    assert tuple(full[0, 0]) == (0, 0, 128) and tuple(full[0, -1]) == (
        128,
        0,
        0,
    )  # jet: dark blue to dark red
    half = overlay(chelsea, heat)
    assert half.size == chelsea.size and half.mode == "RGB"
    with pytest.raises(ValueError, match="does not match the image"):
        overlay(chelsea, heat[:, :-1])
