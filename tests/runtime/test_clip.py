"""A user-supplied CLIP model (runtime/clip.py, FEEDLENS_CLIP__*): settings, loading and its checks, image
preprocessing, text tokenisation, embeddings, versions, and the wiring that follows it (text encoder, search
dimensions, the embedding analyzer).

No CLIP weights exist offline, so the tests export tiny towers of their own with torch, with the signature
of a Hugging Face CLIP export (pixel_values (N, 3, S, S) -> image_embeds (N, D) plus a last_hidden_state;
input_ids and attention_mask (N, L) -> text_embeds (N, D)). Their weights are set by hand, so what they
compute is known: the image tower embeds an image's mean colour (its chroma, plus a little brightness), the
text tower sums per-word vectors, and the words "red", "green" and "blue" sit where those colours do.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from feedlens.config import ClipSettings, Settings, load_settings
from feedlens.core.errors import ConfigError
from feedlens.core.results import EmbeddingResult
from feedlens.runtime.clip import ClipModels, ClipTextEncoder, clip_models, fingerprint
from feedlens.services.factory import Services, build_services

D, SIZE, LENGTH = 8, 32, 16
VOCAB = ["[PAD]", "[UNK]", "<|startoftext|>", "<|endoftext|>", "red", "green", "blue", "a", "photo", "of"]
BASIS = np.linalg.qr(np.random.default_rng(7).normal(size=(D, D)))[0].astype(np.float32)  # orthonormal
CHROMA, BRIGHT, BIAS = BASIS[:, :3], BASIS[:, 3], BASIS[:, 4]  # (D, 3), (D,), (D,)
COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


def image_embedding(rgb: tuple[float, float, float]) -> np.ndarray:
    """What the tiny image tower gives a plain image of this colour (0..1), normalised: (D,)."""
    colour = np.asarray(rgb, np.float32)
    out: np.ndarray = CHROMA @ (colour - colour.mean()) + 0.1 * colour.mean() * BRIGHT
    unit: np.ndarray = out / np.linalg.norm(out)
    return unit


def word_table() -> np.ndarray:
    """(V, D): colour words where their colours embed, other words small seeded vectors, specials zero."""
    table = np.zeros((len(VOCAB), D), np.float32)
    rng = np.random.default_rng(11)
    for i, word in enumerate(VOCAB):
        if word in COLOURS:
            colour = np.asarray(COLOURS[word], np.float32)
            table[i] = CHROMA @ (colour - colour.mean())
        elif not word.startswith(("[", "<")):
            table[i] = BASIS[:, 5:] @ rng.normal(scale=0.2, size=D - 5)
    return table


def export(module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], outputs: list[str]) -> Path:
    """ONNX export with a dynamic batch axis on every input and output (other axes stay fixed)."""
    import torch

    axes = {name: {0: "batch"} for name in (*inputs, *outputs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter, as in conversions.py
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes, dynamo=False
        )
    return path


def image_tower(path: Path, size: int = SIZE, dim: int = D, hidden: bool = True) -> Path:
    """pixel_values (N, 3, size, size), CLIP-normalised -> image_embeds (N, dim) [+ last_hidden_state]."""
    import torch

    mean = torch.tensor(ClipSettings().mean).reshape(1, 3)
    std = torch.tensor(ClipSettings().std).reshape(1, 3)
    project = torch.from_numpy(np.concatenate([CHROMA, BRIGHT[:, None]], axis=1)[:dim])  # (dim, 4)

    class Tower(torch.nn.Module):
        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            rgb = pixels.mean(dim=(2, 3)) * std + mean  # (N, 3): the mean colour, 0..1
            grey = rgb.mean(dim=1, keepdim=True)
            embeds = torch.cat([rgb - grey, 0.1 * grey], dim=1) @ project.T
            return embeds, embeds[:, None, :].repeat(1, 4, 1)

    outputs = ["image_embeds", "last_hidden_state"] if hidden else ["image_embeds"]
    module = Tower() if hidden else _first(Tower())
    return export(module, (torch.zeros(1, 3, size, size),), path, ["pixel_values"], outputs)


def text_tower(
    path: Path, length: int = LENGTH, dim: int = D, mask: bool = True, int32: bool = False, shift: float = 0.0
) -> Path:
    """input_ids [+ attention_mask] (N, length) -> text_embeds (N, dim) + last_hidden_state (N, L, dim):
    the sum of the words' vectors plus a small bias (so an empty text is not a zero vector)."""
    import torch

    table = torch.from_numpy(word_table()[:, :dim] + shift)
    bias = torch.from_numpy(0.05 * BIAS[:dim])

    class Tower(torch.nn.Module):
        def forward(self, ids: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            words = table[ids.long()]  # (N, L, dim)
            if rest:
                words = words * rest[0][..., None].to(words.dtype)
            return words.sum(dim=1) + bias, words

    dtype = torch.int32 if int32 else torch.int64
    args = (torch.zeros(1, length, dtype=dtype),) * (2 if mask else 1)
    inputs = ["input_ids", "attention_mask"][: len(args)]
    return export(Tower(), args, path, inputs, ["text_embeds", "last_hidden_state"])


def _first(module: Any) -> Any:
    """A module returning only the first output of `module`."""
    import torch

    class First(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.inner(x)[0]
            return out

    return First()


def tokenizer_file(path: Path, pad_id: int | None = None) -> Path:
    """A word-level tokenizer.json: lower-cased, split on whitespace, wrapped in start and end tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 2), ("<|endoftext|>", 3)],
    )
    if pad_id is not None:
        tokenizer.enable_padding(pad_id=pad_id, pad_token=VOCAB[pad_id])
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny models and their misfits, exported once for the module."""
    root = tmp_path_factory.mktemp("clip")
    image_tower(root / "vision.onnx")
    text_tower(root / "text.onnx")
    tokenizer_file(root / "tokenizer.json")
    image_tower(root / "vision-64.onnx", size=64)
    image_tower(root / "vision-6d.onnx", dim=6, hidden=False)
    text_tower(root / "text-int32-nomask.onnx", mask=False, int32=True)
    text_tower(root / "text-shifted.onnx", shift=0.01)
    (root / "garbage.onnx").write_bytes(b"not a model")
    (root / "garbage.json").write_text("{")
    return root


def clip(folder: Path, **changes: Any) -> ClipSettings:
    files = {"image_model": folder / "vision.onnx", "text_model": folder / "text.onnx"}
    base = {**files, "tokenizer": folder / "tokenizer.json", "image_size": SIZE, "context_length": LENGTH}
    return ClipSettings(**{**base, "name": "tiny", **changes})


@pytest.fixture(scope="module")
def models(folder: Path) -> ClipModels:
    loaded = ClipModels(clip(folder))
    loaded.load()
    return loaded


def plain(rgb: tuple[float, float, float], size: tuple[int, int] = (48, 40)) -> Image.Image:
    return Image.new("RGB", size, tuple(round(255 * c) for c in rgb))


# -- settings ----------------------------------------------------------------------------------------------
def test_unset_means_the_stand_in() -> None:
    assert not Settings().clip.enabled and not ClipSettings().enabled


def test_settings_from_the_environment(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "IMAGE_MODEL": folder / "vision.onnx",
        "TEXT_MODEL": folder / "text.onnx",
        "TOKENIZER": folder / "tokenizer.json",
        "MEAN": "[0.5, 0.5, 0.5]",
        "STD": "[0.5, 0.5, 0.5]",
        "RESIZE": "stretch",
        "CONTEXT_LENGTH": "64",
        "PAD_ID": "1",
        "NAME": "siglip-base/patch16",
    }
    for key, value in env.items():
        monkeypatch.setenv(f"FEEDLENS_CLIP__{key}", str(value))
    settings = load_settings().clip
    assert settings.enabled and settings.image_model == folder / "vision.onnx"
    assert settings.mean == settings.std == (0.5, 0.5, 0.5) and settings.resize == "stretch"
    assert (settings.context_length, settings.pad_id, settings.name) == (64, 1, "siglip-base/patch16")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"IMAGE_MODEL": "vision.onnx"},
            "FEEDLENS_CLIP__TEXT_MODEL, FEEDLENS_CLIP__TOKENIZER must be set too",
        ),
        ({"IMAGE_MODEL": "vision.onnx", "TEXT_MODEL": "text.onnx", "TOKENIZER": "nope.json"}, "no such file"),
        (
            {"IMAGE_MODEL": "vision.onnx", "TEXT_MODEL": "x", "TOKENIZER": "tokenizer.json"},
            "TEXT_MODEL: no such",
        ),
        ({"STD": "[0.5, 0, 0.5]"}, "every value must be above 0"),
        ({"MEAN": "[0.5, 0.5]"}, "clip.mean"),
        ({"RESIZE": "zoom"}, "clip.resize"),
        ({"NAME": "has spaces"}, "clip.name"),
    ],
)
def test_bad_settings_are_one_line_config_errors(
    folder: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        is_file = key in ("IMAGE_MODEL", "TEXT_MODEL", "TOKENIZER")
        monkeypatch.setenv(f"FEEDLENS_CLIP__{key}", str(folder / value) if is_file else value)
    with pytest.raises(ConfigError, match="invalid FEEDLENS_") as caught:
        load_settings()
    assert message in caught.value.message and "\n" not in caught.value.message


# -- loading and its checks --------------------------------------------------------------------------------
def test_loads_a_matching_pair(models: ClipModels) -> None:
    assert models.dim == D and models.name == "tiny"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"image_size": 64},
            "takes (batch, 3, 32, 32) images, not 64 x 64: set FEEDLENS_CLIP__IMAGE_SIZE=32",
        ),
        ({"image_model": "vision-64.onnx"}, "set FEEDLENS_CLIP__IMAGE_SIZE=64"),
        ({"context_length": 20}, "takes 16 token ids per text, not 20: set FEEDLENS_CLIP__CONTEXT_LENGTH=16"),
        ({"image_model": "vision-6d.onnx"}, "embeds into 6 dimensions and the text tower into 8"),
        ({"image_model": "text.onnx"}, "is not a CLIP image tower: it takes input_ids tensor(int64)"),
        ({"text_model": "vision.onnx"}, "is not a CLIP text tower: it takes pixel_values tensor(float)"),
        ({"image_model": "garbage.onnx"}, "FEEDLENS_CLIP__IMAGE_MODEL: ONNX Runtime cannot load"),
        ({"tokenizer": "garbage.json"}, "FEEDLENS_CLIP__TOKENIZER: cannot read"),
    ],
)
def test_misfits_are_one_line_config_errors(folder: Path, changes: dict[str, Any], message: str) -> None:
    changes = {k: folder / v if isinstance(v, str) else v for k, v in changes.items()}
    with pytest.raises(ConfigError) as caught:
        ClipModels(clip(folder, **changes)).load()
    assert message in caught.value.message and "\n" not in caught.value.message


def test_an_output_without_a_single_embedding_is_refused(folder: Path, tmp_path: Path) -> None:
    import torch

    class Hidden(torch.nn.Module):  # a vision model exported without its projection: (N, tokens, width)
        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return pixels.mean(dim=1)[:, :4, :]

    export(Hidden(), (torch.zeros(1, 3, SIZE, SIZE),), tmp_path / "h.onnx", ["pixel_values"], ["hidden"])
    with pytest.raises(ConfigError, match=r"no single \(N, D\) embedding output \(outputs: hidden"):
        ClipModels(clip(folder, image_model=tmp_path / "h.onnx")).load()


# -- images ------------------------------------------------------------------------------------------------
def test_image_embeddings_are_the_towers_unit_vectors(models: ClipModels) -> None:
    pixels = np.stack([models.pixels(plain(rgb)) for rgb in COLOURS.values()])
    assert pixels.shape == (3, 3, SIZE, SIZE) and pixels.dtype == np.float32
    vectors = models.encode_pixels(pixels)
    assert vectors.shape == (3, D) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    expected = np.stack([image_embedding(rgb) for rgb in COLOURS.values()])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)  # preprocessing undone exactly by the tower
    assert models.encode_pixels(np.zeros((0, 3, SIZE, SIZE), np.float32)).shape == (0, D)


def _stripes() -> Image.Image:
    """96 x 32: blue, red, green thirds; the centre square is all red."""
    image = Image.new("RGB", (96, 32), (0, 0, 255))
    image.paste((255, 0, 0), (32, 0, 64, 32))
    image.paste((0, 255, 0), (64, 0, 96, 32))
    return image


def _mean_colour(settings: ClipSettings, pixels: np.ndarray) -> np.ndarray:
    std, mean = np.asarray(settings.std)[:, None, None], np.asarray(settings.mean)[:, None, None]
    rgb: np.ndarray = (pixels * std + mean).mean(axis=(1, 2))
    return rgb


def test_crop_keeps_the_centre_and_stretch_keeps_everything(folder: Path, models: ClipModels) -> None:
    cropped = models.pixels(_stripes())
    np.testing.assert_allclose(_mean_colour(models.settings, cropped), (1, 0, 0), atol=0.02)
    tall = models.pixels(_stripes().transpose(Image.Transpose.ROTATE_90))  # portrait: cropped vertically
    np.testing.assert_allclose(_mean_colour(models.settings, tall), (1, 0, 0), atol=0.02)
    stretch = ClipModels(clip(folder, resize="stretch"))
    squashed = stretch.pixels(_stripes())
    assert squashed.shape == (3, SIZE, SIZE)
    np.testing.assert_allclose(_mean_colour(stretch.settings, squashed), (1 / 3, 1 / 3, 1 / 3), atol=0.03)


# -- texts -------------------------------------------------------------------------------------------------
def test_text_embeddings_are_unit_vectors_in_order(models: ClipModels) -> None:
    texts = ["red", "a photo of green", "", "  Blue  ", "zebra"]
    vectors = models.encode_texts(texts, batch_size=2)
    assert vectors.shape == (5, D) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    one_by_one = np.concatenate([models.encode_texts([t]) for t in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-6)
    np.testing.assert_allclose(vectors[3], models.encode_texts(["blue"])[0], atol=1e-6)  # lower-cased
    assert models.encode_texts([]).shape == (0, D)
    with pytest.raises(TypeError):
        models.encode_texts("red")


def test_each_colour_word_finds_its_image(models: ClipModels) -> None:
    images = models.encode_pixels(np.stack([models.pixels(plain(rgb)) for rgb in COLOURS.values()]))
    words = models.encode_texts(list(COLOURS))
    similarity = words @ images.T
    assert list(similarity.argmax(axis=1)) == [0, 1, 2]
    assert similarity.diagonal().min() > 0.95 and (similarity - np.eye(3) * 9).max() < 0.0


def test_token_ids_are_padded_truncated_and_masked(folder: Path, models: ClipModels, tmp_path: Path) -> None:
    ids, mask = models.token_ids(["red green", "red " * 40])
    assert ids.shape == mask.shape == (2, LENGTH) and ids.dtype == np.int64
    assert list(ids[0, :4]) == [2, 4, 5, 3] and set(ids[0, 4:]) == {0} and list(mask[0]) == [1] * 4 + [0] * 12
    assert ids[1, 0] == 2 and ids[1, -1] == 3 and mask[1].all()  # truncated, the end token kept
    padded = ClipModels(clip(folder, tokenizer=tokenizer_file(tmp_path / "t.json", pad_id=1)))
    assert set(padded.token_ids(["red"])[0][0, 3:]) == {1}  # the tokenizer's own padding id
    assert set(ClipModels(clip(folder, pad_id=3)).token_ids(["red"])[0][0, 3:]) == {3}  # the setting's


def test_int32_ids_without_a_mask(folder: Path, models: ClipModels) -> None:
    other = ClipModels(clip(folder, text_model=folder / "text-int32-nomask.onnx"))
    assert other.token_ids(["red"])[0].dtype == np.int32
    texts = ["red", "a photo of blue"]
    np.testing.assert_allclose(other.encode_texts(texts), models.encode_texts(texts), atol=1e-6)


# -- versions and wiring -----------------------------------------------------------------------------------
def test_versions_name_the_model_and_follow_its_files(folder: Path, models: ClipModels) -> None:
    assert models.version.startswith("clip:tiny@") and len(models.version.split("@")[1]) == 12
    assert ClipModels(clip(folder, name=None)).version.startswith("clip:vision@")  # the file's name
    shifted = ClipModels(clip(folder, text_model=folder / "text-shifted.onnx"))
    assert shifted.version != models.version
    encoder = ClipTextEncoder(models)
    assert encoder.version == models.version + "+text" and encoder.dim == D
    assert fingerprint([folder / "text.onnx"]) != fingerprint([folder / "text-shifted.onnx"])


def test_models_are_shared_per_settings(folder: Path) -> None:
    assert clip_models(clip(folder), 1) is clip_models(clip(folder), 1)
    assert clip_models(clip(folder), 1) is not clip_models(clip(folder, name="other"), 1)


@pytest.fixture(scope="module")
def clip_services(
    folder: Path, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    data = tmp_path_factory.mktemp("clip-data")
    services = build_services(
        settings.model_copy(update={"clip": clip(folder), "data_dir": data, "database_url": None})
    )
    yield services
    services.close()


def test_the_text_encoder_and_search_follow_the_model(clip_services: Services, services: Services) -> None:
    assert isinstance(clip_services.text_encoder, ClipTextEncoder)
    assert clip_services.text_encoder.version.startswith("clip:tiny@")
    assert clip_services.search.dims == {"visual": 1280, "content": D, "semantic": D}
    assert services.search.dims == {"visual": 1280, "content": 384, "semantic": 384}  # unset: MiniLM
    assert clip_services.text_encoder.version != services.text_encoder.version


@pytest.mark.slow
def test_the_embedding_analyzer_makes_clip_content(clip_services: Services, services: Services) -> None:
    pipeline = clip_services.pipeline(["embedding"])
    analyzer = pipeline.analyzers[-1]
    assert analyzer.name == "embedding" and analyzer.decode_side() == SIZE
    assert "+clip:tiny@" in analyzer.version and "minilm" not in analyzer.version
    assert analyzer.version != services.current_versions["embedding"]
    for rgb in COLOURS.values():
        buffer = io.BytesIO()
        plain(rgb, (64, 64)).save(buffer, "PNG")
        result = pipeline.analyze_one(buffer.getvalue(), "plain.png").results["embedding"]
        assert isinstance(result, EmbeddingResult)
        np.testing.assert_allclose(result.content, image_embedding(rgb), atol=1e-4)
        assert result.parts == ("image",) and result.visual.shape == (1280,)
