"""The text-encoder contract; offline sentence embeddings (all-MiniLM-L6-v2, 384-d) on ONNX Runtime, the
default text encoder; and the concept phrase table.

`TextEncoder` is what search, categories and the embedding analyzer need of a text model. MiniLM (here)
implements it, and so does a user-supplied CLIP text tower (runtime/clip.py, FEEDLENS_CLIP__*).

`MiniLMEncoder.encode` reproduces what sentence-transformers does for all-MiniLM-L6-v2 (modules.json:
Transformer -> mean Pooling -> Normalize) without importing it or torch: WordPiece tokenisation with the
model's own tokenizer.json, truncation to 256 word pieces, padding to the longest text of each batch,
the BERT encoder exported to ONNX, mean pooling over the attention mask, L2 normalisation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from feedlens.core.errors import ModelStoreError
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.runtime.store import ModelStore

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DIM = 384
# From the model's sentence_bert_config.json. Its tokenizer.json says 128 (and fixed padding to 128), but
# sentence-transformers overrides both with max_seq_length and per-batch padding, so we do too.
MAX_SEQ_LENGTH = 256
ONNX_ARTIFACT = "minilm-l6-v2-onnx"
TOKENIZER_ARTIFACT = "minilm-l6-v2-tokenizer"
CONCEPTS_ARTIFACT = "concept-phrase-embeddings"
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_tokenizer(path: Path) -> Tokenizer:
    """The model's fast WordPiece tokenizer, set up as sentence-transformers uses it."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises untyped errors for unreadable files
        raise ModelStoreError(
            f"cannot read tokenizer {path}: {exc}", fix="feedlens store pull --force"
        ) from exc
    if tokenizer.token_to_id("[PAD]") != 0:  # embed_texts pads with id 0
        raise ModelStoreError(f"{path} is not the MiniLM tokenizer ([PAD] is not id 0)")
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tokenizer.no_padding()  # tokenizer.json pads everything to 128; embed_texts pads each batch itself
    return tokenizer


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (torch's F.normalize, eps 1e-12)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def embed_texts(
    session: InferenceSession, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 32
) -> np.ndarray:
    """(n, 384) float32 unit vectors for `texts`, in order. Batches group texts of similar length
    (like sentence-transformers) so little compute goes to padding."""
    if isinstance(texts, str):
        raise TypeError("embed_texts takes a sequence of texts, not one str")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    encodings = tokenizer.encode_batch([t.strip() for t in texts])  # sentence-transformers strips too
    order = sorted(range(len(texts)), key=lambda i: (-len(encodings[i].ids), i))  # deterministic batches
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = len(encodings[rows[0]].ids)  # the longest in this batch (sorted by length)
        ids = np.zeros((len(rows), width), dtype=np.int64)  # [PAD] is id 0, type 0
        types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            n = len(encodings[i].ids)
            ids[r, :n] = encodings[i].ids
            types[r, :n] = encodings[i].type_ids
            mask[r, :n] = 1
        hidden = session.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        out[rows] = l2_normalise(pooled)
    return out


class TextEncoder(Protocol):
    """A text model whose vectors share a space with the images' `content` vectors: MiniLM with the
    sentence-space stand-in (the default), or a CLIP text tower with CLIP image embeddings."""

    @property
    def dim(self) -> int:
        """D, the length of every vector `encode` returns."""
        ...

    @property
    def version(self) -> str:
        """Model identity: vectors stored under another version are not comparable with these."""
        ...

    def load(self) -> None:
        """Load the model now (thread-safe, once); a model that does not fit raises ConfigError."""
        ...

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), D) float32 unit vectors, in input order."""
        ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings: `encode(texts) -> (n, 384)` float32 unit vectors.

    Models load on first use (thread-safe, once per instance); `threads` is ONNX Runtime's intra-op
    thread count (pass `settings.threads_per_worker`, as the analyzers do). An empty text gets the
    model's embedding of the empty sentence ([CLS] [SEP]), as sentence-transformers returns, not zeros.
    """

    dim: ClassVar[int] = DIM
    artifacts: ClassVar[tuple[str, ...]] = (ONNX_ARTIFACT, TOKENIZER_ARTIFACT)

    _session: InferenceSession
    _tokenizer: Tokenizer

    def __init__(self, store: ModelStore, threads: int = 1) -> None:
        self.store = store
        self.threads = threads
        self._loaded = False
        self._load_lock = threading.Lock()

    @property
    def version(self) -> str:
        """Artifact versions: vectors computed under another version are not comparable with these."""
        return "+".join(f"{a}@{self.store.manifest.get(a).version}" for a in self.artifacts)

    def load(self) -> None:
        """Load the tokenizer and the ONNX session once (thread-safe); later calls are free."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._tokenizer = load_tokenizer(self.store.path(TOKENIZER_ARTIFACT))
                self._session = open_session(self.store.path(ONNX_ARTIFACT), self.threads)
                self._loaded = True

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), 384) float32, L2-normalised, in input order; texts beyond 256 word pieces
        (about 200 English words) are truncated, as in sentence-transformers."""
        self.load()
        return embed_texts(self._session, self._tokenizer, texts, batch_size)


@dataclass(frozen=True, slots=True)
class ConceptTable:
    """Phrase embeddings of the ImageNet-1k classes and the WordNet concepts above them.

    Rows follow the `imagenet-hierarchy` artifact: the 1000 classes in model output order, then its
    `concepts` in their order, so `vectors[:n_classes]` aligns with the classifier's scores and
    `vectors[n_classes:]` with the hierarchy's concept list.
    """

    wnids: tuple[str, ...]
    names: tuple[str, ...]
    is_class: np.ndarray  # (N,) bool
    vectors: np.ndarray  # (N, 384) float32, unit rows

    @property
    def n_classes(self) -> int:
        return int(self.is_class.sum())

    def row(self, wnid: str) -> int:
        """Index of `wnid`'s row; KeyError if it is neither a class nor a concept."""
        try:
            return self.wnids.index(wnid)
        except ValueError:
            raise KeyError(wnid) from None


def read_concept_table(path: Path) -> ConceptTable:
    """A ConceptTable from the converter's .npz (no pickled objects are loaded)."""
    with np.load(path, allow_pickle=False) as data:
        return ConceptTable(
            wnids=tuple(str(w) for w in data["wnids"]),
            names=tuple(str(n) for n in data["names"]),
            is_class=data["is_class"].astype(bool),
            vectors=data["vectors"].astype(np.float32, copy=False),
        )


def concept_table(store: ModelStore) -> ConceptTable:
    """The verified `concept-phrase-embeddings` artifact, loaded."""
    return read_concept_table(store.path(CONCEPTS_ARTIFACT))
