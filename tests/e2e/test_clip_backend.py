"""A user's CLIP model in a real server: `feedlens serve` with FEEDLENS_CLIP__* pointing at a tiny CLIP pair,
images stored through POST /v1/images, then word search and categories answered in the CLIP space, and the
CLIP model's version on every stored result it made. A model that does not fit stops the command with one
line and exit code 2.

No CLIP weights exist offline, so the module exports its own tiny towers with torch (the signature of a
Hugging Face CLIP export; tests/runtime/test_clip.py has the unit tests). Their weights are set by hand: the
image tower embeds an image's mean colour, the text tower sums word vectors, and "red", "green" and "blue"
sit where those colours embed, so a query for "red" must find the red image first and nothing else.
The module runs a server of its own (self-contained: it does not use the shared one).
"""

from __future__ import annotations

import io
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from feedlens.config import CLIP_MEAN, CLIP_STD
from tests.e2e.server import FEEDLENS, RELAXED_LIMITS, Server, free_port
from tests.support.api import auth, store
from tests.support.config_errors import assert_one_line_error

pytestmark = pytest.mark.slow

D, SIZE, LENGTH, NAME = 8, 32, 16, "tiny-clip"
VOCAB = ["[PAD]", "[UNK]", "<|startoftext|>", "<|endoftext|>", "red", "green", "blue", "a", "photo", "of"]
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
BASIS = np.linalg.qr(np.random.default_rng(3).normal(size=(D, D)))[0].astype(np.float32)  # orthonormal
WORKSPACE = "clip-backend"


def _export(module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], output: str) -> None:
    import torch

    axes = {name: {0: "batch"} for name in (*inputs, output)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=[output],
            dynamic_axes=axes,
            dynamo=False,
        )


def _image_tower(path: Path, size: int) -> None:
    """pixel_values (N, 3, size, size) -> image_embeds (N, D): the mean colour's chroma + a little grey."""
    import torch

    mean, std = torch.tensor(CLIP_MEAN).reshape(1, 3), torch.tensor(CLIP_STD).reshape(1, 3)
    project = torch.from_numpy(BASIS[:, :4].T.copy())  # (4, D)

    class Tower(torch.nn.Module):
        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            rgb = pixels.mean(dim=(2, 3)) * std + mean
            grey = rgb.mean(dim=1, keepdim=True)
            return torch.cat([rgb - grey, 0.1 * grey], dim=1) @ project

    _export(Tower(), (torch.zeros(1, 3, size, size),), path, ["pixel_values"], "image_embeds")


def _text_tower(path: Path) -> None:
    """input_ids, attention_mask (N, L) -> text_embeds (N, D): the sum of the words' vectors + a bias."""
    import torch

    table = np.zeros((len(VOCAB), D), np.float32)
    for word, rgb in COLOURS.items():
        colour = np.asarray(rgb, np.float32) / 255
        table[VOCAB.index(word)] = BASIS[:, :3] @ (colour - colour.mean())
    words, bias = torch.from_numpy(table), torch.from_numpy(0.05 * BASIS[:, 4])

    class Tower(torch.nn.Module):
        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return (words[ids] * mask[..., None].float()).sum(dim=1) + bias

    ids = torch.zeros(1, LENGTH, dtype=torch.int64)
    _export(Tower(), (ids, ids), path, ["input_ids", "attention_mask"], "text_embeds")


def _tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 2), ("<|endoftext|>", 3)],
    )
    tokenizer.save(str(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip-models")
    _image_tower(folder / "vision.onnx", SIZE)
    _image_tower(folder / "vision-64.onnx", 64)  # a tower for another image size
    _text_tower(folder / "text.onnx")
    _tokenizer(folder / "tokenizer.json")
    return folder


def clip_env(models: Path, **changes: str) -> dict[str, str]:
    env = {
        "IMAGE_MODEL": str(models / "vision.onnx"),
        "TEXT_MODEL": str(models / "text.onnx"),
        "TOKENIZER": str(models / "tokenizer.json"),
        "IMAGE_SIZE": str(SIZE),
        "CONTEXT_LENGTH": str(LENGTH),
        "NAME": NAME,
        **changes,
    }
    return {f"FEEDLENS_CLIP__{k}": v for k, v in env.items()}


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process = Server(tmp_path_factory.mktemp("clip-server"), {**RELAXED_LIMITS, **clip_env(models)})
    yield process.start(timeout=300)
    process.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.key(WORKSPACE, "admin")


def _png(rgb: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), rgb).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def ids(client: httpx.Client, key: str) -> dict[str, str]:
    return {name: store(client, key, _png(rgb), f"{name}.png") for name, rgb in COLOURS.items()}


def _search(client: httpx.Client, key: str, query: str) -> list[dict[str, Any]]:
    response = client.get("/v1/search", headers=auth(key), params={"q": query})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_words_find_their_image_in_the_clip_space(
    client: httpx.Client, key: str, ids: dict[str, str]
) -> None:
    for word in COLOURS:
        for query in (word, f"a photo of {word.upper()}"):
            hits = _search(client, key, query)
            # the other colours sit at cosine -0.5: under the relevance cut-off, not merely ranked lower
            assert [h["image_id"] for h in hits] == [ids[word]], (query, hits)
            assert hits[0]["cosine"] > 0.95
    assert _search(client, key, "photo") == []  # words of no colour are near no image


def test_results_name_the_clip_model(client: httpx.Client, key: str, ids: dict[str, str]) -> None:
    view = client.get(f"/v1/images/{ids['red']}", headers=auth(key)).json()
    version = view["versions"]["embedding"]
    assert f"+clip:{NAME}@" in version and "minilm" not in version, version
    assert view["stale"] == [] and view["results"]["embedding"]["content_dim"] == D
    hit = _search(client, key, "red")[0]
    assert hit["image"]["versions"]["embedding"] == version


def test_categories_are_scored_in_the_clip_space(client: httpx.Client, key: str, ids: dict[str, str]) -> None:
    default = client.get(f"/v1/images/{ids['red']}", headers=auth(key)).json()["results"]["categories"]
    assert default["taxonomy"] == "social-media" and len(default["categories"]) > 5  # categorised at ingest
    assert all(0.0 <= c["score"] <= 1.0 for c in default["categories"])
    taxonomy = {
        "name": "colours",
        "categories": [{"name": w, "phrases": [f"a photo of {w}"]} for w in COLOURS],
    }
    response = client.put("/v1/taxonomy", headers=auth(key), json=taxonomy)
    assert response.status_code == 200, response.text
    assert response.json()["recategorized"] == len(ids)
    for word, image_id in ids.items():
        result = client.get(f"/v1/images/{image_id}", headers=auth(key)).json()["results"]["categories"]
        assert result["taxonomy"] == "colours" and result["assigned"] == [word], result
        assert result["categories"][0]["evidence"]["visual"] > 0  # the CLIP cosine carried it


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FEEDLENS, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_missing_file_stops_serve(models: Path, tmp_path: Path) -> None:
    env = {"FEEDLENS_DATA_DIR": str(tmp_path), **clip_env(models, TEXT_MODEL=str(models / "gone.onnx"))}
    assert_one_line_error(
        _serve(env, "serve", "--port", str(free_port())), "FEEDLENS_CLIP__TEXT_MODEL: no such file"
    )


def test_a_wrong_shape_stops_a_command_that_needs_the_model(models: Path, tmp_path: Path) -> None:
    env = {"FEEDLENS_DATA_DIR": str(tmp_path), **clip_env(models, IMAGE_MODEL=str(models / "vision-64.onnx"))}
    assert _serve(env, "workspaces", "create", "w").returncode == 0  # commands without models still run
    assert_one_line_error(_serve(env, "search", "red", "-w", "w"), "set FEEDLENS_CLIP__IMAGE_SIZE=64")


def test_a_wrong_shape_stops_serve(models: Path, tmp_path: Path) -> None:
    env = {"FEEDLENS_DATA_DIR": str(tmp_path), **clip_env(models, IMAGE_MODEL=str(models / "vision-64.onnx"))}
    served = _serve(env, "serve", "--port", str(free_port()))
    assert_one_line_error(served, "set FEEDLENS_CLIP__IMAGE_SIZE=64")
