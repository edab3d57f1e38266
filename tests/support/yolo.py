"""A tiny YOLO detector with the yolov8/yolo11 export signature, for the user-model backend's tests.

images (N, 3, S, S) RGB 0..1 -> (N, 4 + classes, ANCHORS): anchor c holds the box of whatever is painted in
colour c (red, green, blue), exactly (centre and size from the painted pixels), scored by its area; the
ONNX carries ultralytics' metadata (`names`, `imgsz`, ...) as str() values, as ultralytics writes them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from feedlens.core.results import Box

SIZE, ANCHORS = 64, 16
NAMES = {0: "person", 1: "cat", 2: "hard hat", 3: "Helmets", 4: "dog"}
COLOUR_CLASS = (1, 2, 3)  # red -> cat (COCO), green -> hard hat (no such label), blue -> Helmets (alias)
SQUARE = Box(0.25, 0.25, 0.5, 0.75)  # the square `scene` paints, on a 128 x 64 image


def scene(colour: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (128, 64)) -> Image.Image:
    """White, with one `colour` square over x 0.25-0.5, y 0.25-0.75: on whole input pixels at S = 64."""
    image = Image.new("RGB", size, (255, 255, 255))
    w, h = size
    image.paste(colour, (w // 4, h // 4, w // 2, 3 * h // 4))
    return image


def tiny_yolo(classes: int, transposed: bool = False) -> Any:
    """images (N, 3, H, W) RGB 0..1 -> (N, 4 + classes, ANCHORS): anchor c holds colour c's box."""
    import torch

    select = torch.zeros(classes, 3)  # colour -> its class's score row
    for colour, cls in enumerate(COLOUR_CLASS):
        if cls < classes:
            select[cls, colour] = 1.0

    class TinyYolo(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.excess = torch.nn.Conv2d(3, 3, 1)  # how much each channel exceeds the other two
            self.sharpen = torch.nn.Conv2d(3, 3, 1, groups=3)
            excess = torch.full((3, 3), -0.5) + 1.5 * torch.eye(3)
            self.excess.weight = torch.nn.Parameter(excess.reshape(3, 3, 1, 1))
            self.excess.bias = torch.nn.Parameter(torch.full((3,), -0.25))
            self.sharpen.weight = torch.nn.Parameter(torch.full((3, 1, 1, 1), 4.0))
            self.sharpen.bias = torch.nn.Parameter(torch.zeros(3))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            mask = torch.clamp(self.sharpen(torch.relu(self.excess(images))), 0.0, 1.0)  # (N, 3, H, W)
            ones = torch.ones_like(mask[:, :1])
            xs, ys = ones.cumsum(3) - 0.5, ones.cumsum(2) - 0.5  # pixel centres
            area = mask.sum((2, 3))
            weight = torch.clamp(area, min=1.0)
            cx, cy = (mask * xs).sum((2, 3)) / weight, (mask * ys).sum((2, 3)) / weight
            # a run of n whole pixels has variance (n^2 - 1) / 12
            vx = (mask * (xs - cx[..., None, None]) ** 2).sum((2, 3)) / weight
            vy = (mask * (ys - cy[..., None, None]) ** 2).sum((2, 3)) / weight
            w, h = torch.sqrt(12 * vx + 1), torch.sqrt(12 * vy + 1)
            score = torch.clamp(area / 16, 0.0, 1.0) * 0.9  # (N, 3)
            out = torch.cat([torch.stack([cx, cy, w, h], 1), select[None] * score[:, None]], 1)
            out = torch.cat([out, torch.zeros_like(out[:, :, :1]).repeat(1, 1, ANCHORS - 3)], 2)
            return out.transpose(1, 2) if transposed else out

    return TinyYolo()


def export(module: Any, path: Path, shape: Sequence[int], dynamic: bool, metadata: dict[str, Any]) -> Path:
    """ONNX as ultralytics exports it: input `images`, output `output0`, metadata values as str()."""
    import onnx
    import torch

    axes = {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            module,
            (torch.zeros(*shape),),
            str(path),
            input_names=["images"],
            output_names=["output0"],
            dynamic_axes=axes,
            dynamo=False,
        )
    graph = onnx.load(str(path))
    for key, value in metadata.items():
        prop = graph.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(graph, str(path))
    return path


def ultralytics_metadata(names: dict[int, str] | None = NAMES, **changes: Any) -> dict[str, Any]:
    args = {"batch": 1, "half": False, "dynamic": False, "simplify": True, "opset": None, "nms": False}
    found = {"task": "detect", "stride": 32, "batch": 1, "imgsz": [SIZE, SIZE], "names": names, "args": args}
    return {k: v for k, v in {**found, **changes}.items() if v is not None}
