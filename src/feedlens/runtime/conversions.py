"""Converters that build derived artifacts at `feedlens store pull` time. Registered by name, explicitly."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from feedlens.core.errors import ModelStoreError
from feedlens.runtime import text_encoder, wordnet
from feedlens.runtime.sessions import open_session
from feedlens.runtime.store import Converter

# EfficientNet-Lite variants -> the square input side they were trained at. The package builds its
# same-padding convolutions for exactly this size, so the ONNX graph is only valid there.
EFFICIENTNET_LITE_INPUT_SIZES = {"efficientnet-lite0": 224, "efficientnet-lite2": 260}
EFFICIENTNET_INPUT_SIZE = EFFICIENTNET_LITE_INPUT_SIZES["efficientnet-lite0"]


def export_efficientnet_lite_onnx(variant: str, input_size: int, weights: Path, out: Path) -> None:
    """EfficientNet-Lite .pth -> ONNX (opset 17, dynamic batch), checked against torch on a fixed input.

    Input `input` (N, 3, input_size, input_size); outputs `logits` (N, 1000) and `features` (N, 1280).
    """
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
        net = EfficientNet.from_pretrained(variant, weights_path=str(weights)).eval()
    if net._global_params.image_size != input_size:
        raise ModelStoreError(
            f"{variant} is built for {net._global_params.image_size}-pixel inputs, not {input_size}"
        )

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
        np.random.default_rng(0).standard_normal((2, 3, input_size, input_size), dtype=np.float32)
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


def export_efficientnet_lite0_onnx(inputs: dict[str, Path], out: Path) -> None:
    """EfficientNet-Lite0 (224 px) -> ONNX; see `export_efficientnet_lite_onnx`."""
    variant = "efficientnet-lite0"
    size = EFFICIENTNET_LITE_INPUT_SIZES[variant]
    export_efficientnet_lite_onnx(variant, size, inputs[f"{variant}-pth"], out)


def export_efficientnet_lite2_onnx(inputs: dict[str, Path], out: Path) -> None:
    """EfficientNet-Lite2 (260 px) -> ONNX; see `export_efficientnet_lite_onnx`."""
    variant = "efficientnet-lite2"
    size = EFFICIENTNET_LITE_INPUT_SIZES[variant]
    export_efficientnet_lite_onnx(variant, size, inputs[f"{variant}-pth"], out)


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


def export_minilm_onnx(inputs: dict[str, Path], out: Path) -> None:
    """all-MiniLM-L6-v2 (BERT, safetensors) -> ONNX (opset 17; dynamic batch and sequence axes).

    Inputs input_ids / attention_mask / token_type_ids (int64), output last_hidden_state (N, L, 384);
    pooling and normalisation stay in numpy (text_encoder). Checked against torch on fixed inputs.
    """
    try:
        import onnxruntime as ort
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ModelStoreError(
            f"building the ONNX model needs the conversion extras ({exc.name} is missing)",
            fix="pip install 'feedlens[convert]'",
        ) from exc
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        # transformers loads a folder by file name: lay the two verified artifacts out as one.
        folder = Path(tmp)
        (folder / "config.json").symlink_to(inputs["minilm-l6-v2-config"].resolve())
        (folder / "model.safetensors").symlink_to(inputs["minilm-l6-v2-safetensors"].resolve())
        # Eager attention exports as plain MatMul/Softmax (ran faster on ORT here than the SDPA graph).
        with contextlib.redirect_stderr(io.StringIO()):  # a weight-loading progress bar
            bert = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            hidden: torch.Tensor = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            return hidden

    model = LastHiddenState().eval()
    rng = np.random.default_rng(0)

    def sample(batch: int, length: int) -> dict[str, np.ndarray]:
        ids = rng.integers(1000, 30000, (batch, length), dtype=np.int64)
        ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
        mask = np.ones_like(ids)
        mask[0, length // 2 :] = 0  # padding in the traced sample, so the graph keeps the mask path
        ids[0, length // 2 :] = 0
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    traced = sample(2, 8)
    axes = {"batch": 0, "sequence": 1}
    # Tracer and deprecation notes (transformers' mask code compares the mask width with the sequence
    # length, always equal here); the export is checked on other shapes below.
    with warnings.catch_warnings():
        for category in (UserWarning, DeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        warnings.filterwarnings("ignore", module=r"transformers\.")  # torch's TracerWarning, raised there
        torch.onnx.export(
            model,
            tuple(torch.from_numpy(traced[k]) for k in text_encoder.ONNX_INPUTS),
            str(out),
            input_names=list(text_encoder.ONNX_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={
                k: {v: n for n, v in axes.items()} for k in (*text_encoder.ONNX_INPUTS, "last_hidden_state")
            },
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for feed in (traced, sample(3, 37), sample(1, 1 + 255)):  # other shapes than the traced one
        (hidden,) = session.run(None, feed)
        with torch.no_grad():
            expected = model(*(torch.from_numpy(feed[k]) for k in text_encoder.ONNX_INPUTS)).numpy()
        weights = feed["attention_mask"][:, :, None].astype(np.float32)

        def pooled(h: np.ndarray, w: np.ndarray = weights) -> np.ndarray:
            return text_encoder.l2_normalise((h * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9))

        if not np.allclose(pooled(hidden), pooled(expected), atol=1e-4):
            raise ModelStoreError(
                "the MiniLM ONNX export disagrees with the torch model; refusing the export"
            )


def _write_npz(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez stamps each member with the current time; fixed stamps keep the file byte-stable."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w") as fh:
                np.lib.format.write_array(fh, array, allow_pickle=False)


def build_concept_phrase_embeddings(inputs: dict[str, Path], out: Path) -> None:
    """MiniLM embeddings of every ImageNet class and WordNet concept of the hierarchy -> .npz.

    Rows: the 1000 classes, then the hierarchy's concepts, in its order. Each row is the normalised mean
    of the embeddings of all the synset's WordNet words ("tabby" and "tabby cat"; "dog", "domestic dog"
    and "Canis familiaris"), measured to retrieve a synset from a synonym better than its first word
    alone (docs/models.md). Arrays: wnids, names (the hierarchy's readable name), is_class, vectors.
    """
    hierarchy = json.loads(inputs["imagenet-hierarchy"].read_text())
    synsets = wordnet.parse_data_noun(inputs["wordnet-noun"])
    rows = [(c["wnid"], c["name"], True) for c in hierarchy["classes"]]
    rows += [(c["wnid"], c["name"], False) for c in hierarchy["concepts"]]
    words = [[w.replace("_", " ") for w in synsets[wnid[1:]].words] for wnid, _, _ in rows]
    flat = [w for ws in words for w in ws]
    # One thread: the same floating-point reduction order on every machine, so the file is reproducible.
    session = open_session(inputs["minilm-l6-v2-onnx"], threads=1)
    tokenizer = text_encoder.load_tokenizer(inputs["minilm-l6-v2-tokenizer"])
    word_vectors = text_encoder.embed_texts(session, tokenizer, flat, batch_size=64)
    ends = np.cumsum([len(ws) for ws in words])
    means = np.stack([word_vectors[e - len(ws) : e].mean(axis=0) for ws, e in zip(words, ends, strict=True)])
    _write_npz(
        out,
        {
            "wnids": np.array([r[0] for r in rows], dtype=np.str_),
            "names": np.array([r[1] for r in rows], dtype=np.str_),
            "is_class": np.array([r[2] for r in rows], dtype=np.bool_),
            "vectors": text_encoder.l2_normalise(means),
        },
    )


def default_converters() -> dict[str, Converter]:
    return {
        "efficientnet_lite0_onnx": export_efficientnet_lite0_onnx,
        "efficientnet_lite2_onnx": export_efficientnet_lite2_onnx,
        "imagenet_hierarchy": build_imagenet_hierarchy,
        "minilm_l6_v2_onnx": export_minilm_onnx,
        "concept_phrase_embeddings": build_concept_phrase_embeddings,
    }
