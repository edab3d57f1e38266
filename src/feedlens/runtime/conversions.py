"""Converters that build derived artifacts at `feedlens models pull` time. Registered by name, explicitly."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np

from feedlens.core.errors import ModelStoreError
from feedlens.runtime import wordnet
from feedlens.runtime.store import Converter

EFFICIENTNET_INPUT_SIZE = 224


def export_efficientnet_lite0_onnx(inputs: dict[str, Path], out: Path) -> None:
    """EfficientNet-Lite0 .pth -> ONNX (opset 17, dynamic batch), checked against torch on a fixed input."""
    try:
        import onnxruntime as ort
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelStoreError(
            f"building the ONNX model needs the conversion extras ({exc.name} is missing)",
            fix="pip install 'feedlens[convert]'",
        ) from exc
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=str(inputs["efficientnet-lite0-pth"])
        ).eval()

    class LogitsAndFeatures(torch.nn.Module):
        """The classifier plus its pooled 1280-d features (the visual embedding), from one pass."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.net._avg_pooling(self.net.extract_features(x)).flatten(1)
            return self.net._fc(features), features  # dropout is the identity in eval mode

    model = LogitsAndFeatures().eval()
    sample = torch.from_numpy(
        np.random.default_rng(0).standard_normal((2, 3, EFFICIENTNET_INPUT_SIZE, 224), dtype=np.float32)
    )
    # The TorchScript-based exporter: the model's static same-padding convs export cleanly with it and
    # the graph is byte-stable for a pinned torch, which keeps the recorded hash meaningful.
    with warnings.catch_warnings():  # deprecation and constant-folding notes; the export is checked below
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (sample,),
            str(out),
            input_names=["input"],
            output_names=["logits", "features"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    with torch.no_grad():
        expected_logits, expected_features = (t.numpy() for t in model(sample))
        reference = net(sample).numpy()  # the package's own forward: the wrapper must not change logits
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits, features = session.run(None, {"input": sample.numpy()})
    if not (
        np.allclose(logits, expected_logits, atol=1e-3)
        and np.allclose(logits, reference, atol=1e-3)
        and np.allclose(features, expected_features, atol=1e-3)
    ):
        raise ModelStoreError("the ONNX export disagrees with the torch model; refusing the export")


def build_imagenet_hierarchy(inputs: dict[str, Path], out: Path) -> None:
    """ImageNet classes + WordNet ancestors -> JSON {classes, concepts, ancestors}.

    `ancestors[i]` lists indices into `concepts` for class i, so a (1000, C) membership matrix gives
    concept roll-up scores as `probs @ M`.
    """
    wnids = inputs["imagenet-synsets"].read_text().split()
    if len(wnids) != 1000:
        raise ModelStoreError(f"expected 1000 ImageNet synsets, found {len(wnids)}")
    lemmas = dict(
        line.split("\t", 1) for line in inputs["imagenet-lemmas"].read_text().splitlines() if "\t" in line
    )
    synsets = wordnet.parse_data_noun(inputs["wordnet-noun"])
    class_ancestors = [sorted(wordnet.ancestors(synsets, w[1:])) for w in wnids]
    concept_offsets = sorted({o for anc in class_ancestors for o in anc})
    depth = wordnet.depths(synsets, set(concept_offsets))
    index = {o: i for i, o in enumerate(concept_offsets)}
    payload = {
        "version": 1,
        "classes": [{"wnid": w, "name": lemmas[w].split(",")[0].strip()} for w in wnids],
        "concepts": [{"wnid": f"n{o}", "name": synsets[o].name, "depth": depth[o]} for o in concept_offsets],
        "ancestors": [[index[o] for o in anc] for anc in class_ancestors],
    }
    out.write_text(json.dumps(payload, separators=(",", ":"), sort_keys=True))


def default_converters() -> dict[str, Converter]:
    return {
        "efficientnet_lite0_onnx": export_efficientnet_lite0_onnx,
        "imagenet_hierarchy": build_imagenet_hierarchy,
    }
