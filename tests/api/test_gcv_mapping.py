"""The Google Cloud Vision wire mapping without a server: request parsing, enums, and real analyzer results
mapped onto AnnotateImageResponse, checked by parsing the JSON strictly into the official protobuf types."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from google.cloud import vision
from google.protobuf import json_format
from google.rpc import code_pb2
from PIL import Image, ImageDraw, ImageFont

from feedlens.api.compat import gcv, gcv_annotate, gcv_faces, gcv_layout
from feedlens.api.compat.gcv import Code, FeatureType, GcvError, ImageRequest, Likelihood
from feedlens.api.compat.gcv_annotate import SafetyLevels
from feedlens.api.compat.gcv_layout import Frame
from feedlens.core.results import AnalyzerResult, Box, Face, FacesResult, Label, LabelsResult
from feedlens.core.results.brands import BrandEvidence, BrandsResult
from feedlens.core.results.faces import EMOTIONS
from feedlens.core.results.loading import RESULT_TYPES
from feedlens.core.results.objects import DetectedObject, ObjectsResult
from feedlens.core.results.properties import PropertiesResult
from feedlens.core.results.regions import BodyRegionsResult
from feedlens.core.results.safety import SafetyResult, Verdict
from feedlens.core.results.text import TextLine, TextResult
from feedlens.services.factory import Services
from tests.support.fonts import DEJAVU_BOLD

FONT = DEJAVU_BOLD
ALL = ("labels", "safety", "faces", "objects", "text", "properties", "body_regions")
LEVELS = SafetyLevels(floor=0.3, explicit=0.5, suggestive=0.6)
CALM = {e: 1.0 if e == "neutral" else 0.0 for e in EMOTIONS}
Analysed = dict[str, tuple[int, int, dict[str, AnalyzerResult]]]


def render(lines: list[str], size: tuple[int, int] = (800, 300)) -> bytes:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 48)
    for row, text in enumerate(lines):
        draw.text((40, 40 + 120 * row), text, fill="black", font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def strict(response: dict[str, Any], as_int: bool) -> vision.AnnotateImageResponse:
    """Parse like the official client does, but refusing unknown fields: a misspelt field fails here."""
    text = json.dumps(gcv.encode_enums(response, as_int))
    message = vision.AnnotateImageResponse.pb()()
    json_format.Parse(text, message, ignore_unknown_fields=False)
    return vision.AnnotateImageResponse.wrap(message)


def request(*types: FeatureType, max_results: int = 0, ratios: tuple[float, ...] = ()) -> ImageRequest:
    return ImageRequest(
        content=b"x", features=tuple(gcv.Feature(t, max_results) for t in types), aspect_ratios=ratios
    )


def body(*items: Any) -> bytes:
    return json.dumps({"requests": list(items)}).encode()


# ---- enums and codes match the official definitions ---------------------------------------------------


def test_enum_numbers_are_googles() -> None:
    assert {t.name: t.value for t in FeatureType} == {t.name: t.value for t in vision.Feature.Type}
    assert {x.name: x.value for x in Likelihood} == {x.name: x.value for x in vision.Likelihood}
    assert {c.name: c.value for c in Code} == dict(code_pb2.Code.items())
    breaks = {b.name: b.value for b in vision.TextAnnotation.DetectedBreak.BreakType}
    assert all(breaks[b.name] == b.value for b in gcv_layout.BreakType)
    blocks = {b.name: b.value for b in vision.Block.BlockType}
    assert all(blocks[b.name] == b.value for b in gcv_layout.BlockType)


def test_enums_are_written_as_names_or_numbers() -> None:
    value = {"a": [Likelihood.LIKELY, {"b": FeatureType.LABEL_DETECTION}], "c": 3, "d": "x"}
    assert gcv.encode_enums(value, as_int=False) == {
        "a": ["LIKELY", {"b": "LABEL_DETECTION"}],
        "c": 3,
        "d": "x",
    }
    assert gcv.encode_enums(value, as_int=True) == {"a": [4, {"b": 4}], "c": 3, "d": "x"}
    assert gcv.wants_int_enums("json;enum-encoding=int")
    assert not gcv.wants_int_enums("json")
    assert not gcv.wants_int_enums(None)


# ---- request parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "Invalid JSON"),
        (b"[1, 2]", "expected an object"),
        (b"{}", "'requests'"),
        (b'{"requests": []}', "'requests'"),
        (b'{"requests": {"image": {}}}', "'requests'"),
        (b"\xff\xfe", "Invalid JSON"),
    ],
)
def test_request_level_problems_are_400_invalid_argument(raw: bytes, fragment: str) -> None:
    with pytest.raises(GcvError) as caught:
        gcv.parse_body(raw)
    assert caught.value.status == 400 and caught.value.code is Code.INVALID_ARGUMENT
    assert fragment in caught.value.message


def test_at_most_16_images_per_request() -> None:
    item = {"image": {"content": "AAAA"}, "features": [{"type": 4}]}
    assert len(gcv.parse_body(body(*[item] * 16))) == 16
    with pytest.raises(GcvError, match="Too many images"):
        gcv.parse_body(body(*[item] * 17))


def test_features_by_name_or_number_with_max_results() -> None:
    parsed = gcv.parse_body(
        body(
            {
                "image": {"content": base64.b64encode(b"abc").decode()},
                "features": [
                    {"type": "LABEL_DETECTION", "maxResults": 3},
                    {"type": 6},
                    {"type": "IMAGE_PROPERTIES", "max_results": "7"},  # snake_case and int as string
                ],
            }
        )
    )[0]
    assert parsed.failure is None and parsed.content == b"abc"
    assert [f.type for f in parsed.features] == [
        FeatureType.LABEL_DETECTION,
        FeatureType.SAFE_SEARCH_DETECTION,
        FeatureType.IMAGE_PROPERTIES,
    ]
    assert parsed.max_results(FeatureType.LABEL_DETECTION) == 3
    assert parsed.max_results(FeatureType.IMAGE_PROPERTIES) == 7
    assert parsed.max_results(FeatureType.FACE_DETECTION) == gcv.DEFAULT_MAX_RESULTS
    assert parsed.analyzers == ("labels", "properties", "safety")


@pytest.mark.parametrize(
    ("item", "code", "fragment"),
    [
        ({"image": {"content": "@@@not base64"}, "features": [{"type": 4}]}, Code.INVALID_ARGUMENT, "Base64"),
        ({"image": {"content": 12}, "features": [{"type": 4}]}, Code.INVALID_ARGUMENT, "base64 string"),
        ({"features": [{"type": 4}]}, Code.INVALID_ARGUMENT, "image"),
        ({"image": {}, "features": [{"type": 4}]}, Code.INVALID_ARGUMENT, "'content' or 'source'"),
        ({"image": {"source": {}}, "features": [{"type": 4}]}, Code.INVALID_ARGUMENT, "imageUri"),
        ({"image": {"content": "AAAA"}}, Code.INVALID_ARGUMENT, "feature"),
        ({"image": {"content": "AAAA"}, "features": [{"type": "FOO"}]}, Code.INVALID_ARGUMENT, "'FOO'"),
        ({"image": {"content": "AAAA"}, "features": [{"type": 8}]}, Code.INVALID_ARGUMENT, "unknown"),
        ({"image": {"content": "AAAA"}, "features": [{}]}, Code.INVALID_ARGUMENT, "required"),
        (
            {"image": {"content": "AAAA"}, "features": [{"type": 4, "maxResults": "x"}]},
            Code.INVALID_ARGUMENT,
            "max",
        ),
        (
            {
                "image": {"content": "AAAA"},
                "features": [{"type": 9}],
                "imageContext": {"cropHintsParams": {"aspectRatios": [1.0, -2]}},
            },
            Code.INVALID_ARGUMENT,
            "positive",
        ),
        (
            {"image": {"source": {"gcsImageUri": "gs://bucket/a.png"}}, "features": [{"type": 4}]},
            Code.UNIMPLEMENTED,
            "gs://",
        ),
        ("not an object", Code.INVALID_ARGUMENT, "object"),
    ],
)
def test_a_bad_item_is_its_own_failure(item: Any, code: Code, fragment: str) -> None:
    good = {"image": {"content": "AAAA"}, "features": [{"type": 4}]}
    bad, fine = gcv.parse_body(body(item, good))
    assert bad.failure is not None and bad.failure.code is code and fragment in bad.failure.message
    assert fine.failure is None and fine.content == b"\x00\x00\x00"


def test_image_sources_follow_googles_precedence() -> None:
    both = {"content": "AAAA", "source": {"imageUri": "https://a.example/x.png"}}
    uris = {"source": {"imageUri": "https://a.example/x.png", "gcsImageUri": "gs://b/y.png"}}
    url_safe = {"content": base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("=")}
    parsed = gcv.parse_body(body(*({"image": i, "features": [{"type": 4}]} for i in (both, uris, url_safe))))
    assert parsed[0].content == b"\x00\x00\x00" and parsed[0].uri is None  # content wins over source
    assert parsed[1].uri == "https://a.example/x.png"  # imageUri wins over gcsImageUri
    assert parsed[2].content == b"\xfb\xff"


def test_only_the_needed_analyzers_and_unsupported_features() -> None:
    assert request(FeatureType.LABEL_DETECTION).analyzers == ("labels",)
    assert request(FeatureType.DOCUMENT_TEXT_DETECTION, FeatureType.TEXT_DETECTION).analyzers == ("text",)
    assert request(FeatureType.CROP_HINTS).analyzers == ("body_regions", "faces", "text")
    assert request(FeatureType.LOGO_DETECTION).analyzers == ("text",)  # brand names read in the image
    assert request(FeatureType.OBJECT_LOCALIZATION).analyzers == ("objects",)
    assert request(FeatureType.OBJECT_LOCALIZATION).unsupported is None
    only_web = request(FeatureType.LANDMARK_DETECTION, FeatureType.WEB_DETECTION)
    assert only_web.analyzers == ()
    failure = only_web.unsupported
    assert failure is not None and failure.code is Code.UNIMPLEMENTED
    assert "LANDMARK_DETECTION" in failure.message and "WEB_DETECTION" in failure.message
    assert gcv_annotate.annotate(only_web, 0, 0, {}, LEVELS) == {"error": failure.to_dict()}


def test_features_of_switched_off_analyzers_are_unsupported_here() -> None:
    """FEEDLENS_ANALYZERS without `objects`: OBJECT_LOCALIZATION is that image's UNIMPLEMENTED error and
    never runs; the request's other features are answered as usual."""
    asked = request(FeatureType.OBJECT_LOCALIZATION, FeatureType.LABEL_DETECTION, FeatureType.CROP_HINTS)
    everything_on = {"labels", "faces", "objects", "text", "body_regions"}
    assert gcv.within(asked, everything_on) is asked  # nothing switched off: unchanged
    here = gcv.within(asked, {"labels", "faces", "body_regions"})  # objects and text are off
    assert here.off == (FeatureType.OBJECT_LOCALIZATION, FeatureType.CROP_HINTS)
    assert here.analyzers == ("labels",)
    assert here.served == {FeatureType.LABEL_DETECTION}
    failure = here.unsupported
    assert failure is not None and failure.code is Code.UNIMPLEMENTED
    assert "OBJECT_LOCALIZATION: switched off on this server" in failure.message
    assert "CROP_HINTS" in failure.message
    labels = LabelsResult(labels=(Label("cat", "Cat", 0.9),))
    out = gcv_annotate.annotate(here, 100, 100, {"labels": labels}, LEVELS)
    assert out["labelAnnotations"][0]["description"] == "Cat" and out["error"] == failure.to_dict()
    assert "localizedObjectAnnotations" not in out and "cropHintsAnnotation" not in out
    strict(out, as_int=True)


def test_logo_annotations_from_the_brands_result() -> None:
    quad = ((0.1, 0.2), (0.5, 0.2), (0.5, 0.6), (0.1, 0.6))
    brands = BrandsResult.of(
        {
            "Zorblax": [
                BrandEvidence("text", 1.0, "zorblax"),
                BrandEvidence("logo", 0.9, "3", quad=quad, inliers=40),
            ],
            "Acme": [BrandEvidence("caption", 1.0, "acme")],
        }
    )
    out = gcv_annotate.annotate(request(FeatureType.LOGO_DETECTION), 200, 100, {"brands": brands}, LEVELS)
    (logo,) = out["logoAnnotations"]  # text and caption mentions are not logos
    assert logo["description"] == "Zorblax" and logo["score"] == 0.9
    assert logo["boundingPoly"]["vertices"][0] == {"x": 20, "y": 20}
    assert gcv_annotate.annotate(request(FeatureType.LOGO_DETECTION), 200, 100, {}, LEVELS) == {}


def test_aspect_ratios_after_the_16th_are_ignored() -> None:
    item = {
        "image": {"content": "AAAA"},
        "features": [{"type": "CROP_HINTS"}],
        "image_context": {"crop_hints_params": {"aspect_ratios": [1 + k / 10 for k in range(20)]}},
    }
    assert len(gcv.parse_body(body(item))[0].aspect_ratios) == 16


def test_error_body_is_googles_shape() -> None:
    error = gcv.error_body(401, Code.UNAUTHENTICATED, "bad key", "API_KEY_INVALID")["error"]
    assert (error["code"], error["status"], error["message"]) == (401, "UNAUTHENTICATED", "bad key")
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert gcv.fetch_failure("fetch_disabled", "off").code is Code.PERMISSION_DENIED
    assert gcv.fetch_failure("fetch_timeout", "slow").code is Code.DEADLINE_EXCEEDED
    assert gcv.image_failure("too_large", "big").code is Code.INVALID_ARGUMENT
    assert gcv.image_failure("analyzer_failed", "boom").code is Code.INTERNAL


# ---- result mapping ---------------------------------------------------------------------------------------


def test_likelihood_agrees_with_the_safety_verdict() -> None:
    for k in range(101):
        score = k / 100
        adult = gcv_annotate.likelihood(score, LEVELS.floor, LEVELS.explicit)
        assert (adult >= Likelihood.LIKELY) == (score >= LEVELS.explicit), score
        assert (adult == Likelihood.VERY_UNLIKELY) == (score < LEVELS.floor), score
    assert gcv_annotate.likelihood(0.34, 0.3, 0.5) is Likelihood.UNLIKELY
    assert gcv_annotate.likelihood(0.45, 0.3, 0.5) is Likelihood.POSSIBLE
    assert gcv_annotate.likelihood(0.8, 0.3, 0.5) is Likelihood.VERY_LIKELY


def test_safe_search_racy_covers_explicit_and_unknown_fields() -> None:
    scores = {"explicit_nudity": 0.9, "suggestive": 0.0}
    explicit = gcv_annotate.safe_search(SafetyResult(Verdict.EXPLICIT, scores, ()), LEVELS)
    assert explicit["adult"] is Likelihood.VERY_LIKELY and explicit["racy"] is Likelihood.VERY_LIKELY
    scores = {"explicit_nudity": 0.0, "suggestive": 0.7}
    suggestive = gcv_annotate.safe_search(SafetyResult(Verdict.SUGGESTIVE, scores, ()), LEVELS)
    assert suggestive["adult"] is Likelihood.VERY_UNLIKELY and suggestive["racy"] is Likelihood.LIKELY
    assert {suggestive[k] for k in ("spoof", "medical", "violence")} == {Likelihood.UNKNOWN}


def test_emotion_likelihood_bands() -> None:
    expected = {0.0: 1, 0.09: 1, 0.1: 2, 0.3: 3, 0.5: 4, 0.79: 4, 0.8: 5, 1.0: 5}
    assert {p: int(gcv_faces.emotion_likelihood(p)) for p in expected} == expected
    assert gcv_faces.emotion_likelihood(None) is Likelihood.UNKNOWN


def test_labels_keep_the_analyzers_order_with_stable_mids() -> None:
    labels = LabelsResult(
        labels=(
            Label("cat", "Cat", 0.9, ("pet", "mammal", "animal"), "Animals and Pets", ("classifier",)),
            Label("mammal", "Mammal", 0.93, ("animal",), "Animals and Pets", ("classifier",)),
            Label("pet", "Pet", 0.92, ("animal",), "Animals and Pets", ("classifier",)),
            Label("animal", "Animal", 0.95, (), "Animals and Pets", ("classifier",)),
        )
    )
    out = gcv_annotate.label_annotations(labels, 3)
    assert [x["description"] for x in out] == ["Cat", "Mammal", "Pet"]  # the specific label first
    assert out[0] == {"mid": "/feedlens/cat", "description": "Cat", "score": 0.9, "topicality": 0.9}
    assert len(gcv_annotate.label_annotations(labels, 10)) == 4


def thing(label: str, name: str, coco: str, score: float, box: Box) -> DetectedObject:
    return DetectedObject(label, name, coco, score, box, detector_score=score)


def test_object_boxes_become_normalized_vertices_exactly() -> None:
    objects = ObjectsResult(
        (
            thing("person", "Person", "person", 0.875, Box(0.25, 0.0, 0.75, 1.0)),
            thing("cup", "Cup", "cup", 0.5, Box(0.0, 0.5, 0.125, 0.625)),
        )
    )
    out = gcv_annotate.annotate(
        request(FeatureType.OBJECT_LOCALIZATION), 640, 480, {"objects": objects}, LEVELS
    )
    person, cup = out["localizedObjectAnnotations"]
    assert person == {
        "mid": "/feedlens/person",  # the labelAnnotations' scheme: the same id as the Person label
        "name": "Person",
        "score": 0.875,
        "boundingPoly": {
            "normalizedVertices": [  # clockwise from the top left, ratios of the image (not pixels)
                {"x": 0.25, "y": 0.0},
                {"x": 0.75, "y": 0.0},
                {"x": 0.75, "y": 1.0},
                {"x": 0.25, "y": 1.0},
            ]
        },
    }
    assert cup["boundingPoly"]["normalizedVertices"][2] == {"x": 0.125, "y": 0.625}
    assert "languageCode" not in person  # Google sends none either
    parsed = strict(out, as_int=False)  # the official types, unknown fields refused
    (first, second) = parsed.localized_object_annotations
    assert (first.name, first.mid, second.name) == ("Person", "/feedlens/person", "Cup")
    corners = [(v.x, v.y) for v in first.bounding_poly.normalized_vertices]
    assert corners == [(0.25, 0.0), (0.75, 0.0), (0.75, 1.0), (0.25, 1.0)]
    assert not first.bounding_poly.vertices  # pixel vertices are not filled for objects
    # a box within the 1e-6 tolerance of the image's edge is written inside [0, 1]
    edge = gcv_annotate.normalized_poly(Box(-1e-7, 0.5, 1 + 1e-7, 1.0))["normalizedVertices"]
    assert edge[0]["x"] == 0.0 and edge[1]["x"] == 1.0


def test_objects_ordered_by_score_and_cut_by_max_results() -> None:
    scores = [0.9, 0.8, 0.8, 0.7, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.26]
    names = [f"o{k}" for k in range(len(scores))]  # ids only need to be non-empty here
    objects = ObjectsResult(
        tuple(
            thing(n, n.upper(), "cup", s, Box(0.1, 0.1, 0.2, 0.2)) for n, s in zip(names, scores, strict=True)
        )
    )
    results: dict[str, AnalyzerResult] = {"objects": objects}

    def names_for(max_results: int) -> list[str]:
        asked = request(FeatureType.OBJECT_LOCALIZATION, max_results=max_results)
        return [
            o["name"]
            for o in gcv_annotate.annotate(asked, 10, 10, results, LEVELS)["localizedObjectAnnotations"]
        ]

    assert names_for(0) == [n.upper() for n in names[:10]]  # unset: Google's default of 10
    assert names_for(3) == ["O0", "O1", "O2"]  # ties keep the analyzer's order
    assert len(names_for(50)) == len(scores)
    ranked = gcv_annotate.object_annotations(objects, 50)
    assert [o["score"] for o in ranked] == sorted(scores, reverse=True)


def test_an_image_without_objects_has_no_object_annotations() -> None:
    asked = request(FeatureType.OBJECT_LOCALIZATION)
    assert gcv_annotate.annotate(asked, 10, 10, {"objects": ObjectsResult.empty()}, LEVELS) == {}
    with pytest.raises(TypeError, match="objects"):  # asked for but not run: a server fault, not bad input
        gcv_annotate.annotate(asked, 10, 10, {}, LEVELS)


def test_words_split_lines_with_proportional_boxes() -> None:
    frame = Frame(1000, 100)
    first = [
        TextLine("ab cd", 0.9, Box(0.1, 0.1, 0.6, 0.5), "ocr"),
        TextLine("e", 0.7, Box(0.7, 0.1, 0.8, 0.5), "ocr"),
    ]
    text = TextResult.of([first, [TextLine("fg", 0.8, Box(0.1, 0.6, 0.3, 0.9), "ocr")]])
    assert text.full_text == "ab cd e\nfg"
    out = gcv_layout.text_annotations(text, frame)
    words = out["textAnnotations"]
    assert words[0]["description"] == "ab cd e\nfg\n"
    assert [w["description"] for w in words[1:]] == ["ab", "cd", "e", "fg"]
    xs = [[v["x"] for v in w["boundingPoly"]["vertices"]] for w in words[1:3]]
    assert xs == [[100, 300, 300, 100], [400, 600, 600, 400]]  # 5 characters over 500 px: 100 px each
    page = out["fullTextAnnotation"]["pages"][0]
    assert (page["width"], page["height"], len(page["blocks"])) == (1000, 100, 2)  # one block per row
    row = page["blocks"][0]["paragraphs"][0]["words"]
    assert ["".join(s["text"] for s in w["symbols"]) for w in row] == ["ab", "cd", "e"]
    breaks = [w["symbols"][-1]["property"]["detectedBreak"]["type"] for w in row]
    assert breaks == [gcv_layout.BreakType.SPACE, gcv_layout.BreakType.SPACE, gcv_layout.BreakType.LINE_BREAK]
    assert gcv_layout.text_annotations(TextResult.empty(), frame) == {}


def test_rows_fall_back_to_one_per_line() -> None:
    lines = ["a", "b", "c"]  # the lines' texts
    assert gcv_layout.rows_of(lines, "a b\nc") == [[0, 1], [2]]
    assert gcv_layout.rows_of(lines, "a b c d") == [[0], [1], [2]]
    assert gcv_layout.span((0, 0, 10, 100), 4, 1, 2) == (0, 25, 10, 50)  # tall box: split down


def test_crop_hints_keep_the_subject() -> None:
    frame = Frame(1000, 500)
    face = Face(Box(0.8, 0.2, 0.9, 0.6), 0.9, "test", CALM, "neutral")
    results: dict[str, AnalyzerResult] = {
        "faces": FacesResult.of([face]),
        "body_regions": BodyRegionsResult.empty(),
    }
    square, tall = gcv_layout.crop_hints(frame, results, [1.0, 0.5])
    xs = [v["x"] for v in square["boundingPoly"]["vertices"]]
    ys = [v["y"] for v in square["boundingPoly"]["vertices"]]
    assert (max(xs) - min(xs), max(ys) - min(ys)) == (500, 500)
    assert min(xs) <= 800 and max(xs) >= 900 and square["importanceFraction"] == pytest.approx(1.0)
    assert square["confidence"] == pytest.approx(0.9)
    xs = [v["x"] for v in tall["boundingPoly"]["vertices"]]
    assert max(xs) - min(xs) == 250 and min(xs) <= 800 and max(xs) >= 900
    (best,) = gcv_layout.crop_hints(frame, results, [])
    xs = [v["x"] for v in best["boundingPoly"]["vertices"]]
    assert (min(xs), max(xs)) == (790, 910)  # the face with a 10 % margin
    empty: dict[str, AnalyzerResult] = {"faces": FacesResult.empty()}
    (centred,) = gcv_layout.crop_hints(frame, empty, [1.0])
    assert [v["x"] for v in centred["boundingPoly"]["vertices"]][:2] == [250, 750]
    assert centred["confidence"] == gcv_layout.NO_SUBJECT_CONFIDENCE


# ---- real analyzer results, mapped and parsed strictly ----------------------------------------------------


@pytest.fixture(scope="module")
def analysed(services: Services, sample_dir: Path) -> Analysed:
    names = ["astronaut.png", "chelsea.png", "coffee.png"]
    sources = [(sample_dir / n).read_bytes() for n in names] + [
        render(["HELLO WORLD", "feedlens reads text"])
    ]
    reports = services.pipeline(list(ALL)).analyze_sources([*names, "words.png"], sources)
    out = {}
    for name, report in zip([*names, "words.png"], reports, strict=True):
        assert report.ok and report.width and report.height, report.error
        out[name] = (report.width, report.height, dict(report.results))
    return out


EVERYTHING = tuple(t for t in FeatureType if t is not FeatureType.TYPE_UNSPECIFIED)


@pytest.mark.parametrize("name", ["astronaut.png", "chelsea.png", "coffee.png", "words.png"])
@pytest.mark.parametrize("as_int", [False, True])
def test_real_results_parse_as_annotate_image_responses(analysed: Analysed, name: str, as_int: bool) -> None:
    width, height, results = analysed[name]
    response = strict(
        gcv_annotate.annotate(request(*EVERYTHING, ratios=(1.0,)), width, height, results, LEVELS), as_int
    )
    assert response.error.code == Code.UNIMPLEMENTED  # landmarks, web, products
    assert "OBJECT_LOCALIZATION" not in response.error.message
    for found in response.localized_object_annotations:
        corners = [(v.x, v.y) for v in found.bounding_poly.normalized_vertices]
        assert len(corners) == 4 and all(0 <= c <= 1 for xy in corners for c in xy)
    assert response.safe_search_annotation.spoof == vision.Likelihood.UNKNOWN
    assert len(response.image_properties_annotation.dominant_colors.colors) >= 1
    assert len(response.crop_hints_annotation.crop_hints) == 1
    for hint in response.crop_hints_annotation.crop_hints:
        assert all(0 <= v.x <= width and 0 <= v.y <= height for v in hint.bounding_poly.vertices)


def test_real_results_say_what_is_in_the_photos(analysed: Analysed) -> None:
    features = request(
        FeatureType.LABEL_DETECTION, FeatureType.FACE_DETECTION, FeatureType.SAFE_SEARCH_DETECTION
    )
    cat = strict(gcv_annotate.annotate(features, *analysed["chelsea.png"], LEVELS), as_int=True)
    assert "Cat" in [label.description for label in cat.label_annotations]
    assert not cat.face_annotations
    assert cat.safe_search_annotation.adult in (vision.Likelihood.VERY_UNLIKELY, vision.Likelihood.UNLIKELY)
    coffee = strict(gcv_annotate.annotate(features, *analysed["coffee.png"], LEVELS), as_int=False)
    assert coffee.safe_search_annotation.adult in (
        vision.Likelihood.VERY_UNLIKELY,
        vision.Likelihood.UNLIKELY,
    )
    astronaut = strict(gcv_annotate.annotate(features, *analysed["astronaut.png"], LEVELS), as_int=True)
    (face,) = astronaut.face_annotations
    assert face.joy_likelihood in (vision.Likelihood.LIKELY, vision.Likelihood.VERY_LIKELY)
    assert face.sorrow_likelihood == vision.Likelihood.VERY_UNLIKELY
    xs = [v.x for v in face.bounding_poly.vertices]
    assert 150 < min(xs) < max(xs) < 300  # the astronaut's face, in 512 px image coordinates
    words = strict(
        gcv_annotate.annotate(request(FeatureType.TEXT_DETECTION), *analysed["words.png"], LEVELS), True
    )
    assert [a.description for a in words.text_annotations[1:]] == [
        "HELLO",
        "WORLD",
        "feedlens",
        "reads",
        "text",
    ]
    assert words.full_text_annotation.text == "HELLO WORLD\nfeedlens reads text\n"


def test_real_objects_are_where_they_are_in_the_photos(analysed: Analysed) -> None:
    objects = request(FeatureType.OBJECT_LOCALIZATION, FeatureType.FACE_DETECTION)
    astronaut = strict(gcv_annotate.annotate(objects, *analysed["astronaut.png"], LEVELS), as_int=True)
    people = [o for o in astronaut.localized_object_annotations if o.name == "Person"]
    assert people and people[0].mid == "/feedlens/person" and 0 < people[0].score <= 1
    (face,) = astronaut.face_annotations
    width, height, _ = analysed["astronaut.png"]
    xs = [v.x / width for v in face.fd_bounding_poly.vertices]
    ys = [v.y / height for v in face.fd_bounding_poly.vertices]
    corners = people[0].bounding_poly.normalized_vertices
    x0, y0, x1, y1 = corners[0].x, corners[0].y, corners[2].x, corners[2].y
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert x0 <= min(xs) and max(xs) <= x1 and y0 <= min(ys) and max(ys) <= y1  # her face is in her box
    scores = [o.score for o in astronaut.localized_object_annotations]
    assert scores == sorted(scores, reverse=True)
    coffee = strict(gcv_annotate.annotate(objects, *analysed["coffee.png"], LEVELS), as_int=False)
    assert "Cup" in [o.name for o in coffee.localized_object_annotations]
    cat = strict(gcv_annotate.annotate(objects, *analysed["chelsea.png"], LEVELS), as_int=False)
    assert [o.name for o in cat.localized_object_annotations][:1] == ["Cat"]


def test_results_round_trip_and_map_the_same(analysed: Analysed) -> None:
    """Every result type the mappers read comes back equal from its stored form, and a stored analysis
    maps onto the very same response as a fresh one."""
    quad = ((0.1, 0.2), (0.5, 0.2), (0.5, 0.6), (0.1, 0.6))
    brands = BrandsResult.of(
        {"Zorblax": [BrandEvidence("logo", 0.9, "3", quad=quad, inliers=40), BrandEvidence("text", 0.8)]}
    )
    features = request(*EVERYTHING, ratios=(1.0, 0.5))
    seen: set[type[Any]] = set()
    for width, height, results in analysed.values():
        fresh = {**results, "brands": brands}
        stored = {}
        for name, result in fresh.items():
            kind = RESULT_TYPES[name]
            back = kind.from_dict(json.loads(json.dumps(result.to_dict())))
            assert type(back) is type(result) and back == result, name
            stored[name] = back
            seen.add(kind)
        expected = gcv_annotate.annotate(features, width, height, fresh, LEVELS)
        assert gcv_annotate.annotate(features, width, height, stored, LEVELS) == expected
    assert seen == {
        LabelsResult,
        SafetyResult,
        FacesResult,
        ObjectsResult,
        TextResult,
        PropertiesResult,
        BodyRegionsResult,
        BrandsResult,
    }
