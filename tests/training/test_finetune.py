"""Probe and fine-tune on real labelled images (Tux Paint stamps), checkpoints, resuming, saving."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.services.factory import Services
from feedlens.training.finetune import CHECKPOINT_NAME, FinetuneConfig, FrozenCache, finetune
from feedlens.training.inputs import LabelledImages, eval_array, load_image
from feedlens.training.network import ClassifierNet, TrainedClassifier, load_backbone
from feedlens.training.probe import probe
from tests.training.stamp_data import StampSet, stamp_set

# Two epochs over two cached views: enough to see training work, cheap enough for every `make test`.
# One thread: the test run's two workers already keep both cores busy.
FAST = FinetuneConfig(epochs=2, augment_variants=2, batch_size=16, threads=1, progress=False)


@pytest.fixture(scope="module")
def data() -> StampSet:
    return stamp_set()


@pytest.fixture(scope="module")
def weights(services: Services) -> Path:
    return services.store.path("efficientnet-lite0-pth")


def chance(labels: LabelledImages) -> float:
    """Accuracy of always answering the most frequent class: what a model that learned nothing gets."""
    return float(np.bincount(np.asarray(labels.labels)).max() / len(labels))


def accuracy(model: TrainedClassifier, split: LabelledImages) -> float:
    return float((model.predict_proba(split.images).argmax(axis=1) == np.asarray(split.labels)).mean())


def assert_learned(model: TrainedClassifier, data: StampSet) -> None:
    """Held-out accuracy at least halfway from the chance level to perfect."""
    base = chance(data.test)
    got = accuracy(model, data.test)
    assert got >= base + 0.5 * (1 - base), (got, base)


def test_probe_learns_the_categories(data: StampSet, weights: Path) -> None:
    model = probe(data.train, data.val, data.classes, weights, threads=1)
    probs = model.predict_proba(data.test.images)
    assert probs.shape == (len(data.test), len(data.classes))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.mode == "probe" and model.class_names == data.classes
    assert [h["c"] for h in model.history] == [0.1, 1.0, 10.0, 100.0] and "val_loss" in model.history[0]
    assert_learned(model, data)


def test_probe_on_the_labels_analyzers_stored_features(
    data: StampSet, weights: Path, labels: LabelsAnalyzer
) -> None:
    """Features as the labels analyzer stores them (ONNX) train the same probe as torch's own."""
    stored = np.stack([r.features for r in labels([load_image(im) for im in data.train.images])])
    from_cache = probe(data.train, None, data.classes, weights, train_features=stored, threads=1)
    computed = probe(data.train, None, data.classes, weights, threads=1)
    np.testing.assert_allclose(
        from_cache.predict_proba(data.test.images), computed.predict_proba(data.test.images), atol=1e-3
    )


def test_finetune_trains_the_top_only_and_learns(data: StampSet, weights: Path, tmp_path: Path) -> None:
    model = finetune(data.train, data.val, data.classes, weights, config=FAST, checkpoint_dir=tmp_path)
    assert [h["epoch"] for h in model.history] == [0, 1, 2]  # epoch 0: the probe the head starts from
    assert sum(h["best"] for h in model.history) == 1
    assert all(h["train_loss"] > 0 for h in model.history[1:])
    pretrained = ClassifierNet(load_backbone(weights), len(data.classes), FAST.train_blocks)
    trained, fresh = model.net.state_dict(), pretrained.state_dict()
    assert torch.equal(trained["blocks.13._depthwise_conv.weight"], fresh["blocks.13._depthwise_conv.weight"])
    last = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["trainable"]  # epoch 2's weights
    assert "blocks.13._depthwise_conv.weight" not in last  # frozen: not in the checkpoint
    assert not torch.equal(last["blocks.15._project_conv.weight"], fresh["blocks.15._project_conv.weight"])
    assert not torch.equal(last["conv_head.0.weight"], fresh["conv_head.0.weight"])
    assert_learned(model, data)


def test_finetune_from_a_random_head_learns_by_gradient_descent(data: StampSet, weights: Path) -> None:
    """No probe to start from: what the model knows at the end, the training loop taught it."""
    config = dataclasses.replace(FAST, head_init="random", lr_head=1e-3, epochs=3)
    model = finetune(data.train, data.val, data.classes, weights, config=config)
    assert [h["epoch"] for h in model.history] == [1, 2, 3]
    losses = [h["train_loss"] for h in model.history]
    assert losses[2] < losses[0] * 0.8, losses
    assert model.history[0]["val_loss"] > min(h["val_loss"] for h in model.history)
    assert_learned(model, data)


def test_resumed_run_ends_where_an_uninterrupted_one_does(
    data: StampSet, weights: Path, tmp_path: Path
) -> None:
    # every other image: resuming must be exact on any data, and three runs over all of it take long
    train = LabelledImages(data.train.images[::2], data.train.labels[::2])
    val = LabelledImages(data.val.images[::2], data.val.labels[::2])
    one = dataclasses.replace(FAST, epochs=1)
    finetune(train, val, data.classes, weights, config=one, checkpoint_dir=tmp_path / "first")
    saved = torch.load(tmp_path / "first" / CHECKPOINT_NAME, weights_only=True)
    assert saved["progress"]["epoch"] == 1 and len(saved["progress"]["history"]) == 2
    # Mark the record of epoch 1: a resumed run keeps it rather than training that epoch again.
    original = saved["progress"]["history"][1]["train_loss"]
    saved["progress"]["history"][1]["train_loss"] = 123.0
    torch.save(saved, tmp_path / "epoch1.pt")
    resumed = finetune(
        train,
        val,
        data.classes,
        weights,
        config=FAST,
        checkpoint_dir=tmp_path / "first",
        resume=tmp_path / "epoch1.pt",
    )
    assert resumed.history[1]["train_loss"] == 123.0
    resumed.history[1]["train_loss"] = original
    straight = finetune(train, val, data.classes, weights, config=FAST)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    for a, b in zip(resumed.history, straight.history, strict=True):
        assert a.keys() == b.keys()
        figures = sorted(set(a) - {"train_seconds"})
        np.testing.assert_allclose([a[k] for k in figures], [b[k] for k in figures], rtol=1e-4, atol=1e-6)
    for name, tensor in straight.net.state_dict().items():
        assert torch.allclose(resumed.net.state_dict()[name].float(), tensor.float(), atol=1e-5), name
    assert torch.load(tmp_path / "first" / CHECKPOINT_NAME, weights_only=True)["progress"]["epoch"] == 2


def test_resume_refuses_another_runs_checkpoint(data: StampSet, weights: Path, tmp_path: Path) -> None:
    config = FinetuneConfig(epochs=1, augment_variants=1, threads=1, progress=False, head_init="random")
    small = LabelledImages(
        [data.train.images[list(data.train.labels).index(k)] for k in range(4)], [0, 1, 2, 3]
    )
    finetune(small, None, data.classes, weights, config=config, checkpoint_dir=tmp_path)
    renamed = (*data.classes[:3], "something else")
    with pytest.raises(ValueError, match="class names differ"):
        finetune(small, None, renamed, weights, config=config, resume=tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ValueError, match="train_blocks"):
        other = FinetuneConfig(epochs=1, train_blocks=3, threads=1, progress=False)
        finetune(small, None, data.classes, weights, config=other, resume=tmp_path / CHECKPOINT_NAME)


def test_bad_training_input_is_refused(data: StampSet, weights: Path) -> None:
    images = list(data.train.images[:3])
    with pytest.raises(ValueError, match=r"classes \[3\] have no training images"):
        finetune(LabelledImages(images, [0, 1, 2]), None, data.classes, weights, config=FAST)
    with pytest.raises(ValueError, match="labels must lie in"):
        probe(LabelledImages(images, [0, 1, 7]), None, data.classes, weights)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        LabelledImages(images, [0, 1])
    with pytest.raises(ValueError, match="class weights"):
        finetune(data.train, None, data.classes, weights, config=FAST, class_weights=[1.0, 2.0])


def test_frozen_outputs_are_computed_once_per_view(data: StampSet, weights: Path) -> None:
    net = ClassifierNet(load_backbone(weights), 4, train_blocks=2).eval()
    images = list(data.train.images[:3])
    cache = FrozenCache(limit_bytes=2**30)

    def view(image: Image.Image, index: int) -> torch.Tensor:
        return torch.from_numpy(eval_array([image]))[0]

    first = cache.get(net, images, [0, 1, 2], 0, view)
    again = cache.get(net, images, [2, 0], 0, view)
    assert cache.computed == 3 and first.shape == (3, 192, 7, 7)
    assert torch.equal(again, first[[2, 0]])
    cache.get(net, images, [0], 1, view)  # another variant is another view
    assert cache.computed == 4
    full = FrozenCache(limit_bytes=0)  # over the limit: computed every time, never kept
    full.get(net, images, [0], 0, view)
    full.get(net, images, [0], 0, view)
    assert full.computed == 2


def test_saved_model_loads_without_the_weights_file(data: StampSet, weights: Path, tmp_path: Path) -> None:
    model = probe(data.train, None, data.classes, weights, threads=1)
    model.save(tmp_path / "model.pt")
    loaded = TrainedClassifier.load(tmp_path / "model.pt", threads=1)
    assert loaded.class_names == model.class_names and loaded.mode == "probe"
    images = list(data.test.images[:6])
    np.testing.assert_allclose(loaded.predict_proba(images), model.predict_proba(images), atol=1e-6)
