"""A user-supplied CLIP or SigLIP model (image tower, text tower, tokenizer.json) on ONNX Runtime.

Configured by FEEDLENS_CLIP__* (config.ClipSettings, docs/search.md). The towers are checked when they
load: the image tower takes one float32 input (N, 3, S, S) and the text tower int64 (or int32) token ids
(N, L), optionally with an attention mask; each gives an (N, D) output with the same D. A model that does
not fit is a one-line ConfigError naming the setting to change, never a failure at the first query.

Images are preprocessed as CLIP's own pipeline does (shorter side to S, bicubic, centre S x S crop, then
(x / 255 - mean) / std) or, with `resize=stretch`, squashed to S x S as SigLIP's is. Texts are tokenised
with the model's tokenizer.json, truncated to L ids (end token kept) and padded to exactly L: OpenAI's
`clip.tokenize` pads to 77 and SigLIP was trained on texts padded to its full length.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from feedlens.config import ClipSettings
from feedlens.core.errors import ConfigError
from feedlens.runtime.text_encoder import l2_normalise

if TYPE_CHECKING:
    from tokenizers import Tokenizer

ID_TYPES: dict[str, type[np.integer[Any]]] = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
MASK_INPUT = "attention_mask"
FINGERPRINT_BYTES = 4 << 20  # the head and tail of each model file identify it without reading 600 MB


def fingerprint(paths: Sequence[Path]) -> str:
    """12 hex digits that change when any file does: each file's size, first and last 4 MiB (a model's
    graph and its first and last weights), so computing a version costs milliseconds, not a full read."""
    digest = hashlib.sha256()
    for path in paths:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}:".encode())
        with path.open("rb") as f:
            digest.update(f.read(FINGERPRINT_BYTES))
            if size > 2 * FINGERPRINT_BYTES:
                f.seek(size - FINGERPRINT_BYTES)
                digest.update(f.read(FINGERPRINT_BYTES))
    return digest.hexdigest()[:12]


def _shape(arg: Any) -> str:
    """An ONNX Runtime shape as text: symbolic dimensions by name, e.g. (batch, 3, 224, 224)."""
    return "(" + ", ".join(str(d) for d in arg.shape) + ")"


def _fixed(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _first_line(exc: Exception) -> str:
    """ONNX Runtime and tokenizers errors span lines; configuration errors are one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open(path: Path, threads: int, setting: str) -> Any:
    """An ONNX Runtime session with the settings the other models use (no arena, fixed threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises untyped errors for files that are not ONNX graphs
        raise ConfigError(f"{setting}: ONNX Runtime cannot load {path}: {_first_line(exc)}") from None


def _embedding_output(session: Any, setting: str, path: Path) -> int:
    """Index of the (N, D) output: the only rank-2 one, else the rank-2 one named like `*embed*`
    (Hugging Face exports also return `last_hidden_state`)."""
    outputs = session.get_outputs()
    flat = [i for i, o in enumerate(outputs) if len(o.shape) == 2]
    if len(flat) > 1:
        flat = [i for i in flat if "embed" in outputs[i].name.lower()]
    if len(flat) != 1:
        found = ", ".join(f"{o.name} {_shape(o)}" for o in outputs)
        raise ConfigError(f"{setting}: {path} has no single (N, D) embedding output (outputs: {found})")
    return flat[0]


@dataclass(frozen=True, slots=True)
class _Tower:
    session: Any  # onnxruntime.InferenceSession
    inputs: tuple[str, ...]
    output: int
    dim: int


class ClipModels:
    """Both towers and the tokenizer of one CLIP export, loaded together on first use (thread-safe) so
    their dimensions are checked against each other. `clip_models()` shares one instance per process
    between the embedding analyzer (images) and the text encoder (queries, phrases, captions)."""

    _image: _Tower
    _text: _Tower
    _tokenizer: Tokenizer
    _pad_id: int
    _id_type: type[np.integer[Any]]

    def __init__(self, settings: ClipSettings, threads: int = 1) -> None:
        if not settings.enabled:
            raise ValueError("no CLIP model is configured (FEEDLENS_CLIP__IMAGE_MODEL)")
        assert settings.image_model and settings.text_model and settings.tokenizer  # config checks all three
        self.settings = settings
        self.paths = (settings.image_model, settings.text_model, settings.tokenizer)
        self.threads = threads
        self.name = settings.name or settings.image_model.stem
        self._version: str | None = None
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """`clip:<name>@<fingerprint of both towers and the tokenizer>`; no model is loaded for it."""
        if self._version is None:
            try:
                self._version = f"clip:{self.name}@{fingerprint(self.paths)}"
            except OSError as exc:
                raise ConfigError(f"FEEDLENS_CLIP__*: cannot read {exc.filename}: {exc.strerror}") from None
        return self._version

    @property
    def dim(self) -> int:
        """D, the dimension both towers embed into (loads the models)."""
        self.load()
        return self._image.dim

    def load(self) -> None:
        """Load and check both towers and the tokenizer once; a misfit is a ConfigError."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._tokenizer, self._pad_id = self._load_tokenizer()
                self._image = self._load_image_tower()
                self._text = self._load_text_tower()
                if self._image.dim != self._text.dim:
                    raise ConfigError(
                        f"the CLIP image tower embeds into {self._image.dim} dimensions and the text tower "
                        f"into {self._text.dim}: FEEDLENS_CLIP__IMAGE_MODEL and __TEXT_MODEL are not one pair"
                    )
                self._loaded = True

    def _load_tokenizer(self) -> tuple[Tokenizer, int]:
        from tokenizers import Tokenizer

        path = self.paths[2]
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises untyped errors for unreadable files
            raise ConfigError(f"FEEDLENS_CLIP__TOKENIZER: cannot read {path}: {_first_line(exc)}") from None
        own = tokenizer.padding["pad_id"] if tokenizer.padding else 0
        pad_id = self.settings.pad_id if self.settings.pad_id is not None else int(own)
        tokenizer.no_padding()  # padded here, to exactly context_length
        tokenizer.enable_truncation(max_length=self.settings.context_length)
        return tokenizer, pad_id

    def _load_image_tower(self) -> _Tower:
        setting, path, size = "FEEDLENS_CLIP__IMAGE_MODEL", self.paths[0], self.settings.image_size
        session = _open(path, self.threads, setting)
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
            found = ", ".join(f"{i.name} {i.type} {_shape(i)}" for i in inputs)
            raise ConfigError(
                f"{setting}: {path} is not a CLIP image tower: it takes {found}, not one float32 (N, 3, S, S)"
            )
        _, channels, height, width = (_fixed(d) for d in inputs[0].shape)
        if channels not in (3, None):
            raise ConfigError(f"{setting}: {path} takes {channels} colour channels, not 3")
        fixed = {d for d in (height, width) if d is not None}
        if fixed and fixed != {size}:
            raise ConfigError(
                f"{setting}: {path} takes {_shape(inputs[0])} images, not {size} x {size}: "
                f"set FEEDLENS_CLIP__IMAGE_SIZE={fixed.pop()}"
            )
        output = _embedding_output(session, setting, path)
        probe = np.zeros((1, 3, size, size), np.float32)
        dim = self._probe(session, {inputs[0].name: probe}, output, setting, path)
        return _Tower(session, (inputs[0].name,), output, dim)

    def _load_text_tower(self) -> _Tower:
        setting, path, length = "FEEDLENS_CLIP__TEXT_MODEL", self.paths[1], self.settings.context_length
        session = _open(path, self.threads, setting)
        inputs = {i.name: i for i in session.get_inputs()}
        ids = next((i for i in inputs.values() if i.name != MASK_INPUT), None)
        extra = [n for n in inputs if n not in (MASK_INPUT, ids.name if ids else "")]
        if ids is None or extra or ids.type not in ID_TYPES or len(ids.shape) != 2:
            found = ", ".join(f"{i.name} {i.type} {_shape(i)}" for i in inputs.values())
            raise ConfigError(
                f"{setting}: {path} is not a CLIP text tower: it takes {found}, not int64 (or int32) "
                "token ids (N, L) and optionally an attention_mask"
            )
        fixed = _fixed(ids.shape[1])
        if fixed is not None and fixed != length:
            raise ConfigError(
                f"{setting}: {path} takes {fixed} token ids per text, not {length}: "
                f"set FEEDLENS_CLIP__CONTEXT_LENGTH={fixed}"
            )
        self._id_type = ID_TYPES[ids.type]
        output = _embedding_output(session, setting, path)
        names = (ids.name, MASK_INPUT) if MASK_INPUT in inputs else (ids.name,)
        tower = _Tower(session, names, output, 0)
        dim = self._probe(session, self._text_feed(tower, [""]), output, setting, path)
        return _Tower(session, names, output, dim)

    @staticmethod
    def _probe(session: Any, feed: dict[str, np.ndarray], output: int, setting: str, path: Path) -> int:
        """Run one input through a tower; its output must be (1, D) and finite. Returns D."""
        try:
            out = np.asarray(session.run(None, feed)[output])
        except Exception as exc:  # a graph that loads but cannot run on the shapes CLIP feeds it
            raise ConfigError(f"{setting}: {path} fails on a test input: {_first_line(exc)}") from None
        if out.ndim != 2 or out.shape[0] != 1 or out.shape[1] < 2 or not np.isfinite(out).all():
            raise ConfigError(f"{setting}: {path} gives {tuple(out.shape)} for one input, not (1, D)")
        return int(out.shape[1])

    # -- images ---------------------------------------------------------------------------------------
    def pixels(self, image: Image.Image) -> np.ndarray:
        """(3, S, S) float32: the RGB image resized as configured and normalised."""
        size = self.settings.image_size
        image = image.convert("RGB")
        if self.settings.resize == "stretch":
            image = image.resize((size, size), Image.Resampling.BICUBIC)
        else:
            # torchvision's Resize(S) and CenterCrop(S), which OpenAI's preprocess uses, rounding included
            short, long = sorted(image.size)
            other = max(size, int(size * long / short))
            w, h = (size, other) if image.width <= image.height else (other, size)
            image = image.resize((w, h), Image.Resampling.BICUBIC)
            left, top = round((w - size) / 2), round((h - size) / 2)
            image = image.crop((left, top, left + size, top + size))
        rgb = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        mean, std = np.asarray(self.settings.mean, np.float32), np.asarray(self.settings.std, np.float32)
        return np.ascontiguousarray(((rgb - mean) / std).transpose(2, 0, 1))

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) from `pixels()` -> (N, D) float32 unit image embeddings."""
        self.load()
        if len(pixels) == 0:
            return np.zeros((0, self._image.dim), np.float32)
        feed = {self._image.inputs[0]: np.asarray(pixels, np.float32)}
        return l2_normalise(np.asarray(self._image.session.run(None, feed)[self._image.output]))

    # -- texts ----------------------------------------------------------------------------------------
    def token_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (N, L), truncated and padded with the pad id, and the attention mask (N, L)."""
        self.load()
        return self._token_ids(texts)

    def _token_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        length = self.settings.context_length
        ids = np.full((len(texts), length), self._pad_id, dtype=self._id_type)
        mask = np.zeros((len(texts), length), dtype=self._id_type)
        for row, encoding in enumerate(self._tokenizer.encode_batch([t.strip() for t in texts])):
            n = min(len(encoding.ids), length)
            ids[row, :n] = encoding.ids[:n]
            mask[row, :n] = 1
        return ids, mask

    def _text_feed(self, tower: _Tower, texts: Sequence[str]) -> dict[str, np.ndarray]:
        ids, mask = self._token_ids(texts)  # also used while loading
        return dict(zip(tower.inputs, (ids, mask), strict=False))  # the mask only if the tower takes one

    def encode_texts(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), D) float32 unit text embeddings, in order."""
        if isinstance(texts, str):
            raise TypeError("encode_texts takes a sequence of texts, not one str")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.load()
        out = np.zeros((len(texts), self._text.dim), np.float32)
        for start in range(0, len(texts), batch_size):
            feed = self._text_feed(self._text, texts[start : start + batch_size])
            hidden = np.asarray(self._text.session.run(None, feed)[self._text.output])
            out[start : start + batch_size] = l2_normalise(hidden)
        return out


@lru_cache(maxsize=4)
def clip_models(settings: ClipSettings, threads: int) -> ClipModels:
    """The process's one ClipModels for these settings (not loaded yet): the embedding analyzer and the
    text encoder share its sessions."""
    return ClipModels(settings, threads)


class ClipTextEncoder:
    """The CLIP text tower as feedlens's text encoder (runtime.text_encoder.TextEncoder): queries,
    category phrases, captions and OCR text land in the space of the image embeddings."""

    def __init__(self, models: ClipModels) -> None:
        self.models = models

    @property
    def version(self) -> str:
        return f"{self.models.version}+text"

    @property
    def dim(self) -> int:
        return self.models.dim

    def load(self) -> None:
        self.models.load()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), D) float32, L2-normalised, in input order; long texts are truncated to L ids."""
        return self.models.encode_texts(texts, batch_size)
