"""The search tests' library: the sample photos plus generated edits of chelsea (near duplicates) and its
left half (similar), with the names the tests group them by."""

from __future__ import annotations

from PIL import Image, ImageOps

from tests.conftest import encode

SAMPLES = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "china.jpg",
    "coffee.png",
    "flower.jpg",
    "grace_hopper.jpg",
    "hubble_deep_field.jpg",
    "motorcycle.png",
    "rocket.jpg",
)
# The same photo edited: near duplicates of chelsea.png (and of each other).
NEAR = ("chelsea.png", "cat_q60.jpg", "cat_resized.png", "cat_mirror.png", "cat_crop8.png")
# Half of the photo (its left half): the same subject, too much gone to be the same photo.
HALF = "cat_left_half.png"
CATS = (*NEAR, HALF)
OTHERS = tuple(name for name in SAMPLES if name != "chelsea.png")
UNRELATED = ("mortgage refinancing", "quantum chromodynamics lecture", "tax return form")


def chelsea_copies(cat: Image.Image) -> dict[str, bytes]:
    """Generated edits of chelsea: re-encoded, resized, mirrored, cropped 8% a side, and its left half."""
    w, h = cat.size
    return {
        "cat_q60.jpg": encode(cat, "JPEG", quality=60),
        "cat_resized.png": encode(cat.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.LANCZOS), "PNG"),
        "cat_mirror.png": encode(ImageOps.mirror(cat), "PNG"),
        "cat_crop8.png": encode(
            cat.crop((int(w * 0.08), int(h * 0.08), int(w * 0.92), int(h * 0.92))), "PNG"
        ),
        HALF: encode(cat.crop((0, 0, w // 2, h)), "PNG"),
    }
