"""Fine-tuning EfficientNet-Lite0's last blocks and a new head on augmented views (the probe is probe.py).

The last `train_blocks` MBConv blocks, the conv head and a new fc train with AdamW; everything below is
frozen, and its output is cached per (image, augmentation variant): each training image has
`augment_variants` fixed views (seeded), epoch e uses view e mod V, so from epoch V on no image goes through
the frozen layers again and an epoch costs only the top (measured on 2 cores: 47 images/s while views are
computed, 385 once cached; benchmarks/training_bench.py). The head starts as a linear probe on the training
images' un-augmented features (probe.py says why). Early stopping on validation loss or macro-F1 restores
the best epoch's weights. A checkpoint after every epoch holds everything needed to continue (`resume=`):
shuffling, dropout and augmentation are seeded per epoch and image, so a resumed run ends where an
uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from feedlens.core.files import write_atomic
from feedlens.training.augment import AugmentConfig, Augmenter, eval_batch, view_seed
from feedlens.training.inputs import ImageLike, LabelledImages, check_labels, load_image
from feedlens.training.network import (
    ClassifierNet,
    TrainedClassifier,
    load_backbone,
    progress_bar,
    torch_threads,
)
from feedlens.training.probe import (
    metrics,
    select_linear_head,
    set_head,
    weight_tensor,
)

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "last.pt"
View = Callable[[Image.Image, int], torch.Tensor]  # (image, its index) -> (3, H, W) normalised


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 15
    batch_size: int = 16
    train_blocks: int = 2  # of 16; with the conv head and a 12-class fc, 1.5 M of 3.4 M parameters train
    # Small steps: the head starts as a fitted probe. On the benchmark's validation split (Tux Paint, 12
    # classes) 1e-3 / 1e-4 made the validation loss rise from the first epoch; 1e-4 / 3e-5 lowered it.
    # With head_init="random", raise lr_head to about 1e-3.
    lr_head: float = 1e-4
    lr_body: float = 3e-5  # pretrained layers move slower than the head
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without improvement before stopping
    monitor: Literal["val_loss", "val_macro_f1"] = "val_loss"
    head_init: Literal["probe", "random"] = "probe"
    augment_variants: int = 4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cache_mb: float = 2048.0  # per split; beyond it, frozen outputs are recomputed instead of kept
    seed: int = 0
    threads: int | None = None
    progress: bool = True


def _seed(seed: int, *keys: int) -> int:
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


class FrozenCache:
    """The frozen part's outputs by key (image index, variant) for one split, up to `limit_bytes`."""

    def __init__(self, limit_bytes: float) -> None:
        self._limit = limit_bytes
        self._used = 0
        self._items: dict[tuple[int, int], torch.Tensor] = {}
        self.computed = 0  # images that went through the frozen layers (the benchmark reads it)

    def get(
        self,
        net: ClassifierNet,
        images: Sequence[ImageLike],
        indices: Sequence[int],
        variant: int,
        view: View,
    ) -> torch.Tensor:
        """Stacked outputs for `indices`; the missing ones computed from `view(image, index)` in one batch."""
        missing = [i for i in indices if (i, variant) not in self._items]
        fresh: dict[int, torch.Tensor] = {}
        if missing:
            batch = torch.stack([view(load_image(images[i]), i) for i in missing])
            with torch.no_grad():
                out = net.frozen_forward(batch)
            self.computed += len(missing)
            for i, row in zip(missing, out, strict=True):
                fresh[i] = row
                size = row.numel() * row.element_size()
                if self._used + size <= self._limit:
                    self._items[(i, variant)] = row
                    self._used += size
        return torch.stack([fresh[i] if i in fresh else self._items[(i, variant)] for i in indices])

    def all(
        self, net: ClassifierNet, images: Sequence[ImageLike], variant: int, view: View, batch_size: int
    ) -> torch.Tensor:
        n = len(images)
        return torch.cat(
            [
                self.get(net, images, range(s, min(s + batch_size, n)), variant, view)
                for s in range(0, n, batch_size)
            ]
        )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save(path: Path, state: dict[str, Any]) -> None:
    # atomic: a crash mid-write leaves the previous epoch's checkpoint
    write_atomic(path, lambda f: torch.save(state, f))


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively: what torch's weights-only loader reads back as written."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass
class _Progress:
    """What a checkpoint restores besides the weights."""

    epoch: int = 0
    best_score: float = float("inf")  # lower is better (macro-F1 is negated)
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


class _Run:
    """One fine-tuning run: the network, its optimizer, the caches and the progress a checkpoint keeps."""

    def __init__(
        self,
        train: LabelledImages,
        val: LabelledImages | None,
        class_names: Sequence[str],
        weights: Path,
        cfg: FinetuneConfig,
        class_weights: Sequence[float] | None,
    ) -> None:
        k = len(class_names)
        self.train, self.val, self.cfg, self.class_names = train, val, cfg, list(class_names)
        self.class_weights = class_weights
        self.y_train = check_labels(train, k, "training", every_class=True)
        self.y_val = None if val is None else check_labels(val, k, "validation", every_class=False)
        self.weight = weight_tensor(class_weights, k)
        torch.manual_seed(_seed(cfg.seed, 0))  # the new head's initial weights (replaced by a probe's)
        self.net = ClassifierNet(load_backbone(weights), k, cfg.train_blocks)
        head = list(self.net.fc.parameters())
        body = [p for p in self.net.trainable_parameters() if all(p is not q for q in head)]
        self.optimizer = torch.optim.AdamW(
            [{"params": head, "lr": cfg.lr_head}, {"params": body, "lr": cfg.lr_body}],
            weight_decay=cfg.weight_decay,
        )
        self.weights_sha = file_sha256(weights)
        self.state = _Progress()
        self.best_state = self.net.trainable_state()
        self.augmenter = Augmenter(cfg.augment)
        self.cache = FrozenCache(cfg.cache_mb * 2**20)
        self.val_cache = FrozenCache(cfg.cache_mb * 2**20)

    @staticmethod
    def eval_view(image: Image.Image, index: int) -> torch.Tensor:
        return eval_batch([image])[0]

    def score(self, record: dict[str, Any]) -> float:
        """Lower is better for both monitors; without validation every epoch is the newest best."""
        if self.val is None:
            return -float(record["epoch"])
        return float(record[self.cfg.monitor]) * (-1.0 if self.cfg.monitor == "val_macro_f1" else 1.0)

    def validate(self) -> dict[str, float]:
        if self.val is None or self.y_val is None:
            return {}
        with torch.no_grad():
            h = self.val_cache.all(self.net, self.val.images, 0, self.eval_view, self.cfg.batch_size)
            logits = self.net.trainable_forward(h)
        return {f"val_{m}": v for m, v in metrics(logits, self.y_val, self.weight).items()}

    def restore(self, path: Path) -> None:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != CHECKPOINT_FORMAT or saved["class_names"] != self.class_names:
            raise ValueError(f"{path} is not a checkpoint of this run (its format or class names differ)")
        if saved["train_blocks"] != self.cfg.train_blocks or saved["weights_sha256"] != self.weights_sha:
            raise ValueError(f"{path} was trained from other backbone weights or another train_blocks")
        self.net.load_state_dict({**self.net.state_dict(), **saved["trainable"]})
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state, self.best_state = _Progress(**saved["progress"]), saved["best_state"]

    def save(self, path: Path) -> None:
        _save(
            path,
            {
                "format": CHECKPOINT_FORMAT,
                "class_names": self.class_names,
                "train_blocks": self.cfg.train_blocks,
                "weights_sha256": self.weights_sha,
                "config": _plain(asdict(self.cfg)),
                "trainable": self.net.trainable_state(),
                "optimizer": self.optimizer.state_dict(),
                "best_state": self.best_state,
                "progress": _plain(asdict(self.state)),
            },
        )

    def init_head_from_probe(self) -> None:
        """The head := a linear probe on un-augmented features; with validation, it is epoch 0's model."""
        batch = self.cfg.batch_size
        self.net.eval()
        with torch.no_grad():
            pooled = self.net.pooled_from_frozen(
                FrozenCache(0).all(self.net, self.train.images, 0, self.eval_view, batch)
            )
            val_pooled = None
            if self.val is not None:
                h = self.val_cache.all(self.net, self.val.images, 0, self.eval_view, batch)
                val_pooled = self.net.pooled_from_frozen(h).numpy()
        w, b, _ = select_linear_head(
            pooled.numpy(),
            self.y_train,
            len(self.class_names),
            val_features=val_pooled,
            val_labels=self.y_val,
            class_weights=self.class_weights,
        )
        set_head(self.net, w, b)
        self.best_state = self.net.trainable_state()
        if self.val is not None:  # fine-tuning must beat the probe to replace it
            self.state.history.append({"epoch": 0, **self.validate()})
            self.state.best_score = self.score(self.state.history[-1])

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training set (view `epoch mod V` of each image); the mean training loss."""
        cfg = self.cfg
        order = np.random.default_rng([cfg.seed, 1, epoch]).permutation(len(self.train))
        torch.manual_seed(_seed(cfg.seed, 2, epoch))  # dropout and drop-connect of this epoch
        variant = epoch % max(1, cfg.augment_variants)

        def view(image: Image.Image, index: int) -> torch.Tensor:
            return self.augmenter(image, view_seed(cfg.seed, index, variant))

        self.net.train()
        total = 0.0
        with progress_bar(cfg.progress) as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=len(order), status="")
            for at in range(0, len(order), cfg.batch_size):
                idx = order[at : at + cfg.batch_size]
                h = self.cache.get(self.net, self.train.images, idx.tolist(), variant, view)
                logits = self.net.trainable_forward(h)
                loss = torch.nn.functional.cross_entropy(
                    logits, torch.from_numpy(self.y_train[idx]), weight=self.weight
                )
                self.optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
                self.optimizer.step()
                total += loss.item() * len(idx)
                bar.update(task, advance=len(idx), status=f"loss {loss.item():.3f}")
        self.net.eval()
        return total / len(self.train)

    def run(self, checkpoint_dir: Path | None) -> TrainedClassifier:
        state = self.state
        for epoch in range(state.epoch, self.cfg.epochs):
            if state.stopped:
                break
            began = time.perf_counter()
            loss = self.train_epoch(epoch)
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": loss,
                "train_seconds": time.perf_counter() - began,  # views + frozen part (until cached) + top
                **self.validate(),
            }
            state.history.append(record)
            state.epoch = epoch + 1
            if self.score(record) < state.best_score - 1e-6:
                state.best_score, state.best_epoch, state.bad_epochs = self.score(record), epoch + 1, 0
                self.best_state = self.net.trainable_state()
            else:
                state.bad_epochs += 1
            state.stopped = self.val is not None and state.bad_epochs >= self.cfg.patience
            if checkpoint_dir is not None:
                self.save(checkpoint_dir / CHECKPOINT_NAME)
        self.net.load_state_dict({**self.net.state_dict(), **self.best_state})
        history = [{**r, "best": r["epoch"] == state.best_epoch} for r in state.history]
        return TrainedClassifier(
            self.net.eval(), self.class_names, mode="finetune", history=history, threads=self.cfg.threads
        )


def finetune(
    train: LabelledImages,
    val: LabelledImages | None,
    class_names: Sequence[str],
    weights: Path,
    *,
    config: FinetuneConfig | None = None,
    class_weights: Sequence[float] | None = None,
    checkpoint_dir: Path | None = None,
    resume: Path | None = None,
) -> TrainedClassifier:
    """Fine-tune on `train`, early-stopping on `val`; returns the best epoch's model (by `config.monitor`).

    `weights`: the EfficientNet-Lite0 .pth. `class_weights` (K,) weight the loss. `checkpoint_dir` receives
    `last.pt` after every epoch; `resume` (such a file) continues that run up to `config.epochs`. Without
    validation there is no early stopping and the last epoch is kept. Epoch 0 in the history is the
    probe the head starts from (with `head_init="probe"` and validation data).
    """
    cfg = config or FinetuneConfig()
    with torch_threads(cfg.threads):
        run = _Run(train, val, class_names, weights, cfg, class_weights)
        if resume is not None:
            run.restore(resume)
        elif cfg.head_init == "probe":
            run.init_head_from_probe()
        return run.run(checkpoint_dir)
