"""A made-up brand mark and real photos with it pasted in, for the brand tests (no logo dataset offline)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tests.support.fonts import DEJAVU_BOLD

FONT = DEJAVU_BOLD


def logo() -> Image.Image:
    """A made-up brand mark: a badge with a star, stripes and the name, on transparency."""
    image = Image.new("RGBA", (360, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (4, 4, 356, 196), radius=28, fill=(200, 30, 40, 255), outline=(20, 20, 20, 255), width=6
    )
    draw.polygon(
        [
            (60, 40),
            (75, 85),
            (120, 85),
            (85, 112),
            (98, 158),
            (60, 130),
            (22, 158),
            (35, 112),
            (0, 85),
            (45, 85),
        ],
        fill=(255, 220, 0, 255),
    )
    for y in (40, 70, 100):
        draw.rectangle((140, y, 340, y + 12), fill=(255, 255, 255, 255))
    draw.text((140, 128), "ZORBLAX", fill=(255, 255, 255, 255), font=ImageFont.truetype(FONT, 38))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def composite(photo: Path, mark: Image.Image, scale: float = 0.35, angle: float = 12.0) -> bytes:
    """The logo pasted onto a real photo, rotated and scaled, saved as JPEG."""
    base = Image.open(photo).convert("RGB")
    width = int(base.width * scale)
    pasted = mark.resize((width, int(width * mark.height / mark.width)), Image.Resampling.LANCZOS)
    pasted = pasted.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    base.paste(pasted, (base.width // 5, base.height // 4), pasted)
    out = io.BytesIO()
    base.save(out, "JPEG", quality=85)
    return out.getvalue()


def words(text: str) -> bytes:
    image = Image.new("RGB", (900, 300), "white")
    ImageDraw.Draw(image).text((40, 110), text, fill="black", font=ImageFont.truetype(FONT, 56))
    return png(image)
