"""EfficientNet-Lite0 split into a frozen part and a trainable top, and the trained classifier built on it.

    input (N, 3, 224, 224) -> stem -> blocks[:cut] ---------- frozen (cacheable) ----------
                           -> blocks[cut:] -> conv head -> ReLU6 (Grad-CAM layer) -> mean pool
                           -> dropout -> fc (K classes)

`train_blocks` is how many of the 16 MBConv blocks train with the conv head and the new fc ("finetune");
None trains the fc alone on the pooled 1280-d features ("probe"), so the frozen part ends after pooling.
BatchNorm statistics stay frozen everywhere: batches of a few labelled images give poor estimates, and the
pretrained ones are what the frozen layers below were trained against.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from feedlens.core.files import write_atomic
from feedlens.training.augment import eval_batch
from feedlens.training.inputs import ImageLike, load_image

ARCH = "efficientnet-lite0"
FEATURE_DIM = 1280
N_BLOCKS = 16
SAVE_FORMAT = 1


def load_backbone(weights: Path | None) -> Any:
    """EfficientNet-Lite0 as runtime/conversions.py builds it (pretrained from the `.pth`), eval mode.

    `weights=None` builds the architecture with random weights (to load a saved state into).
    """
    from efficientnet_lite_pytorch import EfficientNet

    if weights is None:
        net = EfficientNet.from_name(ARCH)
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
            net = EfficientNet.from_pretrained(ARCH, weights_path=str(weights))
    return net.eval()


def progress_bar(enabled: bool) -> Progress:
    """A rich progress display (nothing is drawn when disabled); tasks carry a `status` field."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, TextColumn("{task.fields[status]}"), disable=not enabled)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run torch with `threads` intra-op threads inside the block, restoring the process setting after."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ClassifierNet(nn.Module):
    """The split network. `num_classes=None` keeps the pretrained 1000-class ImageNet fc."""

    def __init__(self, backbone: Any, num_classes: int | None, train_blocks: int | None) -> None:
        """`backbone`: from load_backbone; its modules are taken over (not copied)."""
        super().__init__()
        if train_blocks is not None and not 0 <= train_blocks <= N_BLOCKS:
            raise ValueError(f"train_blocks must lie in [0, {N_BLOCKS}] or be None, got {train_blocks}")
        self.train_blocks = train_blocks
        self.cut = N_BLOCKS if train_blocks is None else N_BLOCKS - train_blocks
        self.stem = nn.Sequential(backbone._conv_stem, backbone._bn0, nn.ReLU6())
        self.blocks = backbone._blocks
        self.conv_head = nn.Sequential(backbone._conv_head, backbone._bn1)
        self.head_act = (
            nn.ReLU6()
        )  # its own module (the package reuses one for stem and head): Grad-CAM hooks it
        self.dropout = nn.Dropout(backbone._global_params.dropout_rate)
        self.fc: nn.Linear = backbone._fc if num_classes is None else nn.Linear(FEATURE_DIM, num_classes)
        self._drop_connect = float(backbone._global_params.drop_connect_rate or 0.0)
        for p in self.frozen_parameters():
            p.requires_grad_(False)

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    @property
    def cam_layer(self) -> nn.Module:
        """The last convolutional activation, (N, 1280, 7, 7) at 224 px: Grad-CAM's layer."""
        return self.head_act

    def frozen_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.stem.parameters()
        for block in self.blocks[: self.cut]:
            yield from block.parameters()
        if self.train_blocks is None:
            yield from self.conv_head.parameters()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> ClassifierNet:
        """Dropout and drop-connect follow `mode`; BatchNorm always uses its stored statistics."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def _block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        # The package's schedule: drop-connect grows linearly with depth (active in training mode only).
        out: torch.Tensor = self.blocks[index](x, drop_connect_rate=self._drop_connect * index / N_BLOCKS)
        return out

    def _to_pooled(self, x: torch.Tensor, start: int) -> torch.Tensor:
        for index in range(start, N_BLOCKS):
            x = self._block(index, x)
        activations: torch.Tensor = self.head_act(self.conv_head(x))
        return activations.mean(dim=(2, 3))

    def frozen_forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> the frozen part's output: block `cut`'s input, or pooled (N, 1280) for a probe."""
        x = self.stem(x)
        for index in range(self.cut):
            x = self._block(index, x)
        return self._to_pooled(x, N_BLOCKS) if self.train_blocks is None else x

    def pooled_from_frozen(self, h: torch.Tensor) -> torch.Tensor:
        """The frozen part's output -> pooled features (N, 1280)."""
        return h if self.train_blocks is None else self._to_pooled(h, self.cut)

    def trainable_forward(self, h: torch.Tensor) -> torch.Tensor:
        """The frozen part's output -> logits (N, K)."""
        logits: torch.Tensor = self.fc(self.dropout(self.pooled_from_frozen(h)))
        return logits

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> logits (N, K) and pooled features (N, 1280), from one pass."""
        x = self.stem(x)
        for index in range(self.cut):
            x = self._block(index, x)
        pooled = self._to_pooled(x, self.cut)
        return self.fc(self.dropout(pooled)), pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """State of every module that trains (the frozen rest is the pretrained weights, not saved twice)."""
        frozen = {id(p) for p in self.frozen_parameters()}
        keep = {name for name, p in self.named_parameters() if id(p) not in frozen}
        prefixes = {name.rsplit(".", 1)[0] + "." for name in keep}  # with their modules' BN buffers
        return {
            k: v.detach().clone()
            for k, v in self.state_dict().items()
            if k.rsplit(".", 1)[0] + "." in prefixes
        }


class TrainedClassifier:
    """A trained model: the network, its class names and how it was trained. `predict_proba` is the API."""

    def __init__(
        self,
        net: ClassifierNet,
        class_names: Sequence[str],
        *,
        mode: str,
        history: Sequence[dict[str, Any]] = (),
        threads: int | None = None,
    ) -> None:
        if net.num_classes != len(class_names):
            raise ValueError(f"the network has {net.num_classes} outputs for {len(class_names)} class names")
        self.net = net.eval()
        self.class_names = tuple(class_names)
        self.mode = mode
        self.history = [dict(h) for h in history]
        self.threads = threads

    def _run(
        self,
        images: Sequence[ImageLike],
        batch_size: int,
        features: bool,
        on_batch: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        outs: list[np.ndarray] = []
        with torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = eval_batch([load_image(im) for im in images[start : start + batch_size]])
                logits, pooled = self.net.forward_with_features(batch)
                outs.append((pooled if features else torch.softmax(logits, dim=1)).numpy())
                if on_batch is not None:
                    on_batch(len(batch))
        width = FEATURE_DIM if features else len(self.class_names)
        return np.concatenate(outs) if outs else np.zeros((0, width), dtype=np.float32)

    def predict_proba(self, images: Sequence[ImageLike], batch_size: int = 16) -> np.ndarray:
        """(N, K) float32 class probabilities, rows summing to 1, columns in `class_names` order."""
        return self._run(images, batch_size, features=False)

    def features(
        self,
        images: Sequence[ImageLike],
        batch_size: int = 16,
        on_batch: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """(N, 1280) pooled features of the (possibly fine-tuned) backbone; `on_batch(n)` after each batch."""
        return self._run(images, batch_size, True, on_batch)

    def save(self, path: Path) -> None:
        """Write the whole model (about 14 MB: the backbone is included, so loading needs no weights file)."""
        payload = {
            "format": SAVE_FORMAT,
            "arch": ARCH,
            "class_names": list(self.class_names),
            "mode": self.mode,
            "train_blocks": self.net.train_blocks,
            "history": self.history,
            "state": self.net.state_dict(),
        }
        write_atomic(path, lambda f: torch.save(payload, f))  # a reader never sees half a model

    @classmethod
    def load(cls, path: Path, threads: int | None = None) -> TrainedClassifier:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != SAVE_FORMAT or payload.get("arch") != ARCH:
            raise ValueError(f"{path} is not a feedlens {ARCH} classifier (format {SAVE_FORMAT})")
        names = payload["class_names"]
        net = ClassifierNet(load_backbone(None), len(names), payload["train_blocks"])
        net.load_state_dict(payload["state"])
        return cls(net, names, mode=payload["mode"], history=payload["history"], threads=threads)
