"""The text analyzer (OCR) with the real PP-OCRv4 models on rendered text, skimage's page, and real photos."""

from __future__ import annotations

import re
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import skimage
from PIL import Image, ImageDraw, ImageFont
from pydantic import TypeAdapter

from feedlens.analyzers.text import Stage, TextAnalyzer
from feedlens.analyzers.text_engines import SpaceAwareCTCDecode, deskewed_anchors, gate_input
from feedlens.core.results.geometry import Box
from feedlens.core.results.text import (
    TextLine,
    TextResult,
    extract_hashtags,
    extract_mentions,
    extract_urls,
    group_rows,
    reading_order,
)
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SKIMAGE = Path(skimage.__file__).parent / "data"
# Per-image character accuracy (1 - CER, whitespace runs collapsed) that every rendered case must reach.
# benchmarks/ocr_accuracy.py measured 0.985 mean, 1.0 median over 64 rendered images (worst 0.46: a 90 degree
# two-line case that lost a line); the five cases below read 0.94-1.0.
MIN_CHAR_ACCURACY = 0.85


@pytest.fixture(scope="module")
def ocr(services: Services) -> TextAnalyzer:
    analyzer = TextAnalyzer(services.store, services.settings)
    analyzer.load()
    return analyzer


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def char_accuracy(predicted: str, truth: str) -> float:
    p, t = (re.sub(r"\s+", " ", s).strip() for s in (predicted, truth))
    return 1.0 - levenshtein(p, t) / len(t)


def render(
    lines: list[str],
    font: str,
    size: int,
    fill: tuple[int, int, int] = (20, 20, 20),
    background: tuple[int, int, int] = (245, 245, 240),
    angle: float = 0.0,
    canvas: tuple[int, int] | None = None,
) -> Image.Image:
    """Text lines drawn with a matplotlib font, optionally rotated (expanding the canvas)."""
    face = ImageFont.truetype(str(FONTS / font), size)
    width = max(int(face.getlength(t)) for t in lines) + 2 * size
    height = len(lines) * int(size * 1.6) + 2 * size
    image = Image.new("RGB", canvas or (width, height), background)
    draw = ImageDraw.Draw(image)
    for k, text in enumerate(lines):
        draw.text((size, size + k * int(size * 1.6)), text, font=face, fill=fill)
    if angle:
        image = image.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=background)
    return image


CASES = [  # lines, font, size px, text colour, background, rotation degrees
    (["Follow us for more daily tips"], "DejaVuSans.ttf", 22, (20, 20, 20), (245, 245, 240), 0.0),
    (
        ["Limited edition sneakers", "drop Friday"],
        "DejaVuSerif-Bold.ttf",
        40,
        (240, 240, 240),
        (25, 30, 45),
        0.0,
    ),
    (["Best coffee in town since 1998"], "DejaVuSansMono.ttf", 30, (180, 20, 60), (250, 210, 60), 8.0),
    (["Tag a friend who needs this"], "STIXGeneral.ttf", 36, (10, 60, 10), (230, 240, 255), -12.0),
    (["Link in bio for tickets"], "DejaVuSans-Bold.ttf", 48, (255, 255, 255), (200, 40, 40), 90.0),
]


def test_rendered_text_is_read_with_word_spaces(ocr: TextAnalyzer) -> None:
    images = [render(lines, font, size, fill, bg, angle) for lines, font, size, fill, bg, angle in CASES]
    results = ocr(images)
    scores = [char_accuracy(r.full_text, "\n".join(c[0])) for r, c in zip(results, CASES, strict=True)]
    for score, result, case in zip(scores, results, CASES, strict=True):
        assert not result.gated
        assert score >= MIN_CHAR_ACCURACY, f"{case[1]} {case[2]}px {case[5]}deg read {result.full_text!r}"
        assert " " in result.full_text  # the spaces PP-OCRv4's arg-max decoding drops are back
    assert np.mean(scores) >= 0.93


def test_line_boxes_cover_the_ink(ocr: TextAnalyzer) -> None:
    """Redaction blurs every line box: every dark pixel of the text must lie inside some box."""
    image = render(["SALE ends Sunday", "everything must go"], "DejaVuSans.ttf", 32, canvas=(700, 300))
    result = ocr([image])[0]
    assert len(result.lines) == 2
    assert [ln.text for ln in result.lines] == ["SALE ends Sunday", "everything must go"]  # reading order
    ink = np.argwhere(np.asarray(image.convert("L")) < 128)  # (K, 2) row, col
    covered = np.zeros(len(ink), dtype=bool)
    for line in result.lines:
        x0, y0, x1, y1 = line.box.to_pixels(*image.size)
        covered |= (ink[:, 0] >= y0) & (ink[:, 0] < y1) & (ink[:, 1] >= x0) & (ink[:, 1] < x1)
    assert covered.mean() > 0.995
    assert all(line.engine == "ppocr-v4" and 0.5 <= line.confidence <= 1.0 for line in result.lines)


def test_promo_hashtags_mentions_and_urls(ocr: TextAnalyzer) -> None:
    image = render(
        ["SUMMER SALE 50% OFF #summer", "@shop www.shop.com/sale"], "DejaVuSans-Bold.ttf", 40,
        fill=(200, 30, 30), background=(250, 240, 200),
    )  # fmt: skip
    result = ocr([image])[0]
    assert result.hashtags == ("#summer",)
    assert result.mentions == ("@shop",)
    assert result.urls == ("www.shop.com/sale",)
    assert "SUMMER SALE 50% OFF" in result.full_text


def test_skimage_page_is_read(ocr: TextAnalyzer, decoder: ImageDecoder) -> None:
    image = decoder.decode(SKIMAGE / "page.png", min_side=ocr.input_size).image
    result = ocr([image])[0]
    text = result.full_text
    assert text.startswith("Region-based segmentation")
    for phrase in ("markers of the coins", "These markers are pixels", "either object or background"):
        assert phrase in text
    assert len(result.lines) >= 5
    tops = [ln.box.y0 for ln in result.lines]
    assert tops == sorted(tops)  # one column: reading order is top to bottom


def test_skimage_handwriting_is_not_taken_for_text(ocr: TextAnalyzer, decoder: ImageDecoder) -> None:
    """`text.png` is handwritten formulas on lined paper: a known limit, the printed-text detector
    sees no text there, so the gate skips it rather than returning garbage."""
    image = decoder.decode(SKIMAGE / "text.png", min_side=ocr.input_size).image
    result = ocr([image])[0]
    assert result.gated and result.full_text == ""


def test_gate_skips_photos_without_text(
    ocr: TextAnalyzer, decoder: ImageDecoder, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = [
        decoder.decode(sample_dir / name, min_side=ocr.input_size).image
        for name in ("chelsea.png", "coffee.png", "astronaut.png")
    ]
    ocr(photos[:1])  # warm
    start = time.perf_counter()
    for photo in photos:  # what every photo cost before the gate: one detection at the OCR size
        ocr._detect_ocr(photo)
    full = time.perf_counter() - start

    def no_recognition(*args: object) -> None:
        raise AssertionError("recognition ran on a photo without text")

    monkeypatch.setattr(ocr._reader, "read", no_recognition)
    start = time.perf_counter()
    results = ocr(photos)
    gated = time.perf_counter() - start
    assert all(r.gated and r == TextResult.empty(gated=True) for r in results)
    stages = {read.stage for read in ocr.reads_of(photos)}
    assert stages <= {Stage.BLANK, Stage.QUICK, Stage.FULL}
    # Relative, so that a busy machine does not fail it (benchmarks/ocr_speed.py has the absolute figures).
    assert gated < 0.6 * full, f"gate {gated:.3f}s vs full detection {full:.3f}s"


def test_gate_lets_a_small_caption_on_a_photo_through(ocr: TextAnalyzer, sample_dir: Path) -> None:
    scene = Image.open(sample_dir / "chelsea.png").convert("RGB").resize((1280, 960))
    draw = ImageDraw.Draw(scene)
    font = ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), 40)
    draw.text(
        (60, 860), "Link in bio", font=font, fill=(255, 255, 255), stroke_width=3, stroke_fill=(0, 0, 0)
    )
    result = ocr([scene])[0]
    assert not result.gated and "Link in bio" in result.full_text


@pytest.mark.parametrize(
    "size,colour",
    [((64, 64), (0, 0, 0)), ((64, 64), (255, 255, 255)), ((16, 16), (90, 90, 90)), ((16, 2000), (0, 0, 0)),
     ((3000, 16), (255, 255, 255)), ((2000, 700), (0, 0, 0))],
)  # fmt: skip
def test_blank_and_odd_shapes_give_empty_text(
    ocr: TextAnalyzer, size: tuple[int, int], colour: tuple[int, int, int]
) -> None:
    result = ocr([Image.new("RGB", size, colour)])[0]
    assert result.full_text == "" and result.lines == ()
    assert result.to_dict()["schema"] == "feedlens.text/1"


def test_thin_strip_with_text_does_not_crash(ocr: TextAnalyzer) -> None:
    strip = render(["a very long banner of text " * 4], "DejaVuSans.ttf", 12, canvas=(1800, 16))
    result = ocr([strip])[0]
    assert all(0.0 <= ln.box.x0 <= ln.box.x1 <= 1.0 for ln in result.lines)


def test_preprocess_scales_to_ocr_size_and_gate_shape(ocr: TextAnalyzer) -> None:
    big, small = (TextAnalyzer.ocr_copy(Image.new("RGB", size)) for size in ((2000, 1500), (300, 100)))
    assert big.shape == (736, 981, 3) and small.shape == (200, 600, 3)  # 2x at most
    pages = ocr.preprocess([Image.new("RGB", (2000, 1500))], {})
    assert pages[0].small.shape == (360, 480, 3) and pages[0].text_classes is None
    gate = gate_input(Image.new("RGB", (2000, 1500)), 480)
    assert gate.shape == (1, 3, 384, 480) and gate.dtype == np.float32
    assert gate_input(Image.new("RGB", (16, 2000)), 480).shape[2:] == (480, 32)


# --- pure logic: extraction, reading order, decoding, result validation ---


def test_extraction_rules() -> None:
    text = "New drop! #Summer #sale #summer #2024 #café A&#39;s @shop @Shop. mail info@shop.com now"
    assert extract_hashtags(text) == ("#Summer", "#sale", "#café")
    assert extract_mentions(text) == ("@shop",)
    urls = "Visit shop.com/sale, https://x.co/a?b=1 or www.Shop.com. e.g. v3.5 file.py info@mail.com"
    assert extract_urls(urls) == ("shop.com/sale", "https://x.co/a?b=1", "www.Shop.com")
    assert extract_mentions("@a.b_c, @x") == ("@a.b_c", "@x")
    assert extract_hashtags("#日本 #한국어 ＃ｓａｌｅ shop.com/#frag") == (
        "#日本",
        "#한국어",
        "#sale",
    )  # NFKC
    assert extract_urls("background.It was (see shop.com/sale) SHOP.COM") == ("shop.com/sale", "SHOP.COM")


def _line(text: str, x0: float, y0: float, x1: float, y1: float) -> TextLine:
    return TextLine(text=text, confidence=0.9, box=Box(x0, y0, x1, y1), engine="test")


def test_reading_order_groups_rows_then_left_to_right() -> None:
    lines = [
        _line("right", 0.6, 0.11, 0.9, 0.19),
        _line("second", 0.1, 0.3, 0.5, 0.4),
        _line("left", 0.1, 0.1, 0.4, 0.2),
    ]
    rows = reading_order(lines)
    assert [[ln.text for ln in row] for row in rows] == [["left", "right"], ["second"]]
    result = TextResult.of(rows)
    assert result.full_text == "left right\nsecond"
    assert [ln.text for ln in result.lines] == ["left", "right", "second"]


def test_slanted_words_group_into_their_lines() -> None:
    """Two lines at 12 degrees, each split into three word boxes: the upright boxes of one line's words
    step upwards, the deskewed anchors keep each line together and in reading order."""
    angle = np.deg2rad(-12)  # image y points down: negative rises to the right
    direction, normal = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    quads = []
    for line in range(2):
        for word in range(3):
            origin = np.array([50.0, 300.0]) + 60 * line * normal + 130 * word * direction
            corners = [origin, origin + 110 * direction, origin + 110 * direction + 30 * normal]
            quads.append(np.array([*corners, origin + 30 * normal], dtype=np.float32))
    order = [[3 * line + word for word in range(3)] for line in range(2)]
    assert group_rows(deskewed_anchors(quads)) == order
    shuffled = [quads[i] for i in (5, 0, 3, 1, 4, 2)]
    rows = group_rows(deskewed_anchors(shuffled))
    assert [[(5, 0, 3, 1, 4, 2)[i] for i in row] for row in rows] == order


def test_space_aware_decoder_reads_gaps_and_keeps_cjk_unspaced() -> None:
    decoder = SpaceAwareCTCDecode(["a", "b", "中", "文"], space_threshold=0.1)
    # classes: 0 blank, 1 a, 2 b, 3 中, 4 文, 5 space
    frames = [(1, 0.0), (0, 0.3), (2, 0.0), (0, 0.02), (1, 0.0), (0, 0.3), (3, 0.0), (0, 0.3), (4, 0.0)]
    probs = np.zeros((len(frames), 6), dtype=np.float32)
    for t, (cls, space) in enumerate(frames):
        probs[t, cls] = 0.9 if cls else 0.9 - space
        probs[t, 5] = space
    text, conf = decoder.decode_one(probs)
    assert text == "a ba中文"  # gap 0.3 -> space; 0.02 -> none; next to CJK -> none
    assert conf == pytest.approx(0.9)


def test_result_validation_and_schema() -> None:
    line = _line("hi", 0.1, 0.1, 0.2, 0.2)
    with pytest.raises(ValueError, match="gated"):
        TextResult(lines=(line,), full_text="hi", hashtags=(), mentions=(), urls=(), gated=True)
    with pytest.raises(ValueError, match="score"):
        TextLine(text="x", confidence=1.5, box=Box(0, 0, 1, 1), engine="e")
    with pytest.raises(ValueError, match="hold text"):
        TextLine(text="  ", confidence=0.5, box=Box(0, 0, 1, 1), engine="e")
    data = TextResult.of([[line]]).to_dict()
    assert data["schema"] == "feedlens.text/1" and data["lines"][0]["box"]["x0"] == 0.1
    TypeAdapter(TextResult).validate_python(TextResult.of([[line]]))
    schema = TextAnalyzer.json_schema()
    assert schema["$id"] == "feedlens.text/1"
    assert {"lines", "full_text", "hashtags", "mentions", "urls", "gated"} <= set(schema["properties"])
