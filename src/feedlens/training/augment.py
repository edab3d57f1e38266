"""Image transforms for training: seeded random augmentation (kornia) and the deterministic eval transform.

Both return what EfficientNet-Lite0 takes: float32 (N, 3, 224, 224) as (x - 127) / 128. The eval transform
is inputs.eval_array (the `labels` analyzer's preprocessing) as a tensor.

Augmentation is kornia's (torch only, no OpenCV): albumentations 2.0.8 requires opencv-python-headless,
which installs a second OpenCV 5.x into the same `cv2` package as the project's pinned opencv-python 4.x.
Every random choice of one image comes from `seed` alone (`augment(image, seed)` is reproducible), which is
what lets finetune cache the frozen trunk's output per (image, seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from kornia import augmentation as kaug
from PIL import Image

from feedlens.analyzers.labels import CROP, INPUT_MEAN, INPUT_STD, RESIZE
from feedlens.core.imageops import resize_shorter_side
from feedlens.training.inputs import eval_array


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation; p_* is the probability that it is applied to an image."""

    crop_scale: tuple[float, float] = (0.35, 1.0)  # area fraction kept by the random resized crop (zoom)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    p_flip: float = 0.5  # horizontal only: social photos are rarely upside down
    rotation_degrees: float = 15.0
    p_rotation: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.03
    p_colour: float = 0.8
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    p_blur: float = 0.2
    noise_std: float = 0.03  # on [0, 1] pixel values
    p_noise: float = 0.2
    jpeg_quality: tuple[float, float] = (30.0, 95.0)  # re-compression artefacts of reposted images
    p_jpeg: float = 0.3


class Augmenter:
    """Random training views of an image, each fully determined by a seed."""

    def __init__(self, config: AugmentConfig | None = None, size: int = CROP) -> None:
        c = config or AugmentConfig()
        self.config = c
        self.size = size
        self._pipeline = kaug.ImageSequential(
            kaug.RandomResizedCrop((size, size), scale=c.crop_scale, ratio=c.crop_ratio),
            kaug.RandomHorizontalFlip(p=c.p_flip),
            kaug.RandomRotation(c.rotation_degrees, p=c.p_rotation),
            kaug.ColorJitter(c.brightness, c.contrast, c.saturation, c.hue, p=c.p_colour),
            kaug.RandomGaussianBlur((5, 5), c.blur_sigma, p=c.p_blur),
            kaug.RandomGaussianNoise(std=c.noise_std, p=c.p_noise),
            kaug.RandomJPEG(c.jpeg_quality, p=c.p_jpeg),
        )

    def __call__(self, image: Image.Image, seed: int) -> torch.Tensor:
        """One augmented view, float32 (3, size, size), normalised; the same for the same (image, seed)."""
        # Downscale first: a 12 MP photo would make every op 50x slower for no visible difference at 224 px.
        small = resize_shorter_side(image, round(self.size * RESIZE / CROP), Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        # kornia draws its parameters from torch's global generator: fork it so the caller's stream is
        # untouched and this view depends on `seed` only.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            view: torch.Tensor = self._pipeline(pixels.contiguous())
        return (view[0].clamp(0.0, 1.0) * 255.0 - INPUT_MEAN) / INPUT_STD

    def batch(self, images: Sequence[Image.Image], seeds: Sequence[int]) -> torch.Tensor:
        """(N, 3, size, size) float32: `images[i]` augmented with `seeds[i]`."""
        return torch.stack([self(im, s) for im, s in zip(images, seeds, strict=True)])


def eval_batch(images: Sequence[Image.Image], size: int = CROP) -> torch.Tensor:
    """`eval_array` as a torch tensor."""
    return torch.from_numpy(eval_array(images, size))


def view_seed(seed: int, index: int, variant: int) -> int:
    """A well-mixed 63-bit seed for variant `variant` of training image `index` in a run seeded `seed`."""
    state = np.random.SeedSequence([seed, index, variant]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1
