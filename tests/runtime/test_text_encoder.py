"""The MiniLM text encoder and the concept phrase table, on the real artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feedlens.runtime.text_encoder import DIM, ConceptTable, MiniLMEncoder, concept_table
from feedlens.services.factory import Services

TEXTS = [
    "a cat sleeping on a sofa",
    "Kitten",
    "stock market report for the third quarter",
    "",
    "   leading and trailing spaces   ",
    "Crème brûlée in Zürich 🍮🔥 — naïve café",
    "东京的夜景",
    "word " * 400,  # far beyond 256 word pieces: the reference truncates it the same way
]


@pytest.fixture(scope="module")
def encoder(services: Services) -> MiniLMEncoder:
    enc = MiniLMEncoder(services.store, threads=services.settings.threads_per_worker)
    enc.load()
    return enc


@pytest.fixture(scope="module")
def table(services: Services) -> ConceptTable:
    return concept_table(services.store)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_matches_transformers_reference(services: Services, encoder: MiniLMEncoder, tmp_path: Path) -> None:
    """What sentence-transformers computes: HF tokenizer (truncate to 256, pad to longest), the torch
    model (its default SDPA attention, not the exported eager graph), mean pooling, normalisation."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    store = services.store
    (tmp_path / "config.json").symlink_to(store.path("minilm-l6-v2-config"))
    (tmp_path / "model.safetensors").symlink_to(store.path("minilm-l6-v2-safetensors"))
    model = transformers.AutoModel.from_pretrained(str(tmp_path)).eval()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(store.path("minilm-l6-v2-tokenizer")))
    batch = tokenizer(
        [t.strip() for t in TEXTS], padding=True, truncation=True, max_length=256, return_tensors="pt"
    )
    assert batch["input_ids"].shape[1] == 256
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    expected = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()

    got = encoder.encode(TEXTS)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() > 0.9999, cosines
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_output_shape_dtype_and_norm(encoder: MiniLMEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), DIM) == (len(TEXTS), MiniLMEncoder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, DIM)


def test_semantic_sanity(encoder: MiniLMEncoder) -> None:
    sofa_cat, kitten, stocks = encoder.encode(["a cat sleeping on a sofa", "kitten", "stock market report"])
    assert _cos(sofa_cat, kitten) > _cos(sofa_cat, stocks)


def test_batched_equals_one_by_one(encoder: MiniLMEncoder) -> None:
    together = encoder.encode(TEXTS, batch_size=3)  # mixed lengths: padded batches
    alone = np.concatenate([encoder.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_array_equal(encoder.encode(TEXTS, batch_size=3), together)  # deterministic


def test_long_text_is_truncated(encoder: MiniLMEncoder) -> None:
    words = " ".join(f"topic{i % 50} sentence" for i in range(2500))  # 5000 words
    (long_vec,) = encoder.encode([words])
    assert np.isfinite(long_vec).all()
    # Only the first 256 word pieces count: appending more text changes nothing.
    (longer,) = encoder.encode([words + " completely different ending about volcanoes"])
    np.testing.assert_allclose(long_vec, longer, atol=1e-6)


def test_unicode_and_empty_texts(encoder: MiniLMEncoder) -> None:
    emoji, cafe, empty, blank = encoder.encode(["🐱🐶🎉", "naïve café in Zürich", "", "   "])
    for v in (emoji, cafe, empty):
        assert np.isfinite(v).all()
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    np.testing.assert_allclose(empty, blank, atol=1e-6)  # whitespace-only is the empty text


def test_rejects_a_bare_string(encoder: MiniLMEncoder) -> None:
    with pytest.raises(TypeError):
        encoder.encode("a cat")
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["a cat"], batch_size=0)


def test_version_names_the_artifacts(encoder: MiniLMEncoder) -> None:
    assert encoder.version.startswith("minilm-l6-v2-onnx@")
    assert "minilm-l6-v2-tokenizer@" in encoder.version


def test_concept_table_shape_and_order(services: Services, table: ConceptTable) -> None:
    import json

    hierarchy = json.loads(services.store.path("imagenet-hierarchy").read_text())
    n_classes, n_concepts = len(hierarchy["classes"]), len(hierarchy["concepts"])
    assert table.vectors.shape == (n_classes + n_concepts, DIM)
    assert table.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, atol=1e-5)
    assert table.n_classes == n_classes == 1000
    assert table.is_class[:n_classes].all() and not table.is_class[n_classes:].any()
    assert list(table.wnids[:n_classes]) == [c["wnid"] for c in hierarchy["classes"]]
    assert list(table.wnids[n_classes:]) == [c["wnid"] for c in hierarchy["concepts"]]
    assert table.names[281] == "tabby" and table.row("n02123045") == 281
    with pytest.raises(KeyError):
        table.row("n99999999")


def test_concept_table_is_semantic(encoder: MiniLMEncoder, table: ConceptTable) -> None:
    tabby = table.vectors[table.row("n02123045")]
    cat, truck = encoder.encode(["cat", "truck"])
    assert _cos(tabby, cat) > _cos(tabby, truck)
    # A concept row: "dog" the query is nearest to a dog synset among all rows.
    (dog,) = encoder.encode(["dog"])
    assert table.names[int(np.argmax(table.vectors @ dog))] == "dog"
