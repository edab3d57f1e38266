"""The Rekognition wire mapping without a server: request validation, and real analyzer results mapped
onto Rekognition's responses, each checked field by field against botocore's model of the response."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, TypeVar

import botocore.session
import pytest
from PIL import Image, ImageDraw, ImageFont

from feedlens.api.compat import rekognition as rk
from feedlens.api.compat import rekognition_requests as rq
from feedlens.api.compat.rekognition_faces import detect_faces
from feedlens.api.compat.rekognition_router import build_tables, from_problem, labels_analyzers
from feedlens.core.results import AnalyzerResult, Box, Face, FacesResult, Label, LabelsResult
from feedlens.core.results.objects import DetectedObject, ObjectsResult
from feedlens.core.results.properties import DominantColour, Orientation, PropertiesResult
from feedlens.core.results.safety import Category, SafetyRegion, SafetyResult, Verdict
from feedlens.core.results.text import TextLine, TextResult
from feedlens.core.vocabulary import FORBIDDEN_JARGON, Vocabulary
from feedlens.services.factory import Services
from tests.support.botocore_shapes import conforms, output
from tests.support.fonts import DEJAVU_BOLD

FONT = DEJAVU_BOLD
MODEL = botocore.session.get_session().get_service_model("rekognition")
R = TypeVar("R")


def analysed(
    services: Services, names: tuple[str, ...], data: bytes
) -> tuple[dict[str, AnalyzerResult], dict[str, str]]:
    pipeline = services.pipeline(names)
    report = pipeline.analyze_one(data)
    assert report.ok, report.error
    return dict(report.results), pipeline.versions()


def typed(results: dict[str, AnalyzerResult], name: str, kind: type[R]) -> R:
    found = results[name]
    assert isinstance(found, kind), name
    return found


def render(lines: list[str]) -> bytes:
    image = Image.new("RGB", (800, 300), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 48)
    for row, text in enumerate(lines):
        draw.text((40, 40 + 120 * row), text, fill="black", font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load()


def labels_request(**params: Any) -> rq.LabelsRequest:
    return rq.LabelsRequest.parse(params)


# ---- requests ----------------------------------------------------------------------------------------


def test_image_bytes_are_decoded_and_checked() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    assert rq.read_image({"Image": {"Bytes": base64.b64encode(png).decode()}}) == png
    for params, code in [
        ({}, "InvalidParameterException"),
        ({"Image": {"S3Object": {"Bucket": "b", "Name": "n"}}}, "InvalidParameterException"),
        ({"Image": {"Bytes": "not base64!"}}, "InvalidParameterException"),
        ({"Image": {"Bytes": ""}}, "InvalidParameterException"),
        ({"Image": {"Bytes": 12}}, "InvalidParameterException"),
        (
            {"Image": {"Bytes": base64.b64encode(b"0" * (rq.MAX_IMAGE_BYTES + 1)).decode()}},
            "ImageTooLargeException",
        ),
    ]:
        with pytest.raises(rq.RekognitionError) as caught:
            rq.read_image(params)
        assert caught.value.code == code, params
    at_limit = base64.b64encode(b"0" * rq.MAX_IMAGE_BYTES).decode()
    assert len(rq.read_image({"Image": {"Bytes": at_limit}})) == rq.MAX_IMAGE_BYTES


def test_the_body_must_be_a_json_object() -> None:
    assert rq.parse_body(b"") == {}
    for body in (b"{", b"[1]", b"\xff", b"[" * 200_000 + b"]" * 200_000):
        with pytest.raises(rq.RekognitionError) as caught:
            rq.parse_body(body)
        assert caught.value.code == "InvalidParameterException"


def test_label_request_defaults_are_rekognitions() -> None:
    request = labels_request()
    assert (request.max_labels, request.min_confidence, request.general, request.properties) == (
        None,
        55.0,
        True,
        False,
    )
    assert request.max_colors == 10
    only_properties = labels_request(
        Features=["IMAGE_PROPERTIES"], Settings={"ImageProperties": {"MaxDominantColors": 3}}
    )
    assert (only_properties.general, only_properties.properties, only_properties.max_colors) == (
        False,
        True,
        3,
    )


@pytest.mark.parametrize(
    "params",
    [
        {"MaxLabels": -1},
        {"MaxLabels": "3"},
        {"MaxLabels": True},
        {"MaxLabels": 2.5},
        {"MinConfidence": 150},
        {"MinConfidence": -1},
        {"MinConfidence": "high"},
        {"Features": ["GENERAL_LABELS", "OBJECTS"]},
        {"Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES", "GENERAL_LABELS"]},
        {"Features": "GENERAL_LABELS"},
        {"Settings": {"ImageProperties": {"MaxDominantColors": 21}}},
        {"Settings": {"GeneralLabels": {"LabelInclusionFilters": "Cat"}}},
        {"Settings": []},
    ],
)
def test_bad_label_parameters_are_invalid(params: dict[str, Any]) -> None:
    with pytest.raises(rq.RekognitionError) as caught:
        rq.LabelsRequest.parse(params)
    assert caught.value.code == "InvalidParameterException"
    assert caught.value.status == 400


def test_face_attributes_are_validated_and_default_to_default() -> None:
    assert rq.face_attributes({}) == {"DEFAULT"}
    assert rq.face_attributes({"Attributes": ["DEFAULT"]}) == {"DEFAULT"}
    assert rq.face_attributes({"Attributes": ["ALL"]}) == {"ALL"}
    assert rq.face_attributes({"Attributes": ["DEFAULT", "EMOTIONS"]}) == {"DEFAULT", "EMOTIONS"}
    with pytest.raises(rq.RekognitionError):
        rq.face_attributes({"Attributes": ["NOSE"]})


def test_text_filters_and_regions() -> None:
    request = rq.TextRequest.parse(
        {
            "Filters": {
                "WordFilter": {"MinConfidence": 90, "MinBoundingBoxHeight": 0.05},
                "RegionsOfInterest": [
                    {"BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.3, "Height": 0.4}},
                    {"Polygon": [{"X": 0.5, "Y": 0.5}, {"X": 0.9, "Y": 0.6}, {"X": 0.7, "Y": 0.9}]},
                ],
            }
        }
    )
    assert request.min_confidence == 90 and request.min_height == 0.05
    assert request.regions == (pytest.approx((0.1, 0.2, 0.4, 0.6)), (0.5, 0.5, 0.9, 0.9))
    for bad in (
        {"RegionsOfInterest": [{}]},
        {"RegionsOfInterest": [{"BoundingBox": {}}] * 11},
        {"WordFilter": {"MinBoundingBoxWidth": 2}},
    ):
        with pytest.raises(rq.RekognitionError):
            rq.TextRequest.parse({"Filters": bad})


def test_image_errors_map_onto_rekognitions() -> None:
    assert rq.image_error("too_many_pixels", "m").code == "ImageTooLargeException"
    assert rq.image_error("too_large", "m").code == "ImageTooLargeException"
    assert rq.image_error("unsupported_format", "m").code == "InvalidImageFormatException"
    assert rq.image_error("truncated", "m").code == "InvalidImageFormatException"
    assert rq.image_error("analyzer_failed", "m").code == "InvalidImageFormatException"
    assert rq.image_error("empty", "m").code == "InvalidParameterException"
    error = rq.RekognitionError("ImageTooLargeException", "too big")
    assert error.body() == {
        "__type": "ImageTooLargeException",
        "Code": "ImageTooLargeException",
        "Message": "too big",
    }


def test_app_wide_problems_are_rewritten_in_rekognitions_shape() -> None:
    too_large = from_problem(
        413, json.dumps({"code": "request_too_large", "detail": "over 8 bytes"}).encode()
    )
    assert (too_large.code, too_large.status, too_large.message) == (
        "ImageTooLargeException",
        400,
        "over 8 bytes",
    )
    assert from_problem(422, b"{}").code == "InvalidParameterException"
    assert from_problem(429, b"not json").code == "ProvisionedThroughputExceededException"
    assert (from_problem(503, b"{}").code, from_problem(503, b"{}").status) == ("InternalServerError", 500)


# ---- DetectLabels ------------------------------------------------------------------------------------


def test_detect_labels_on_the_cat(services: Services, sample_dir: Path, vocabulary: Vocabulary) -> None:
    results, versions = analysed(services, ("labels",), (sample_dir / "chelsea.png").read_bytes())
    result = typed(results, "labels", LabelsResult)
    response = rk.detect_labels(
        result, None, labels_request(MinConfidence=0), vocabulary, rk.CssColours(), 100.0, versions["labels"]
    )
    conforms(response, output("DetectLabels"))
    names = [label["Name"] for label in response["Labels"]]
    assert names[0] == "Cat" and {"Pet", "Mammal", "Animal"} <= set(names[:4])  # specific first
    cat = response["Labels"][0]
    assert cat["Confidence"] > 50
    assert [p["Name"] for p in cat["Parents"]] == [vocabulary.label(p).name for p in result.labels[0].parents]
    assert {"Pet", "Mammal", "Animal"} <= {p["Name"] for p in cat["Parents"]}
    assert cat["Categories"] == [{"Name": "Animals and Pets"}]
    assert {"Kitten", "Kitty"} & {a["Name"] for a in cat["Aliases"]} and len(cat["Aliases"]) <= 3
    assert not {n.lower() for n in names} & FORBIDDEN_JARGON  # no WordNet jargon reaches a client
    assert response["LabelModelVersion"] == versions["labels"]
    assert "ImageProperties" not in response

    default = rk.detect_labels(result, None, labels_request(), vocabulary, rk.CssColours(), 100.0, "v")
    assert default["Labels"] and all(label["Confidence"] >= 55 for label in default["Labels"])
    assert default["Labels"][0]["Name"] == "Cat"
    sure = rk.detect_labels(
        result, None, labels_request(MinConfidence=90), vocabulary, rk.CssColours(), 100, "v"
    )
    assert 0 < len(sure["Labels"]) < len(response["Labels"])
    assert all(label["Confidence"] >= 90 for label in sure["Labels"])
    top = rk.detect_labels(
        result, None, labels_request(MaxLabels=2, MinConfidence=0), vocabulary, rk.CssColours(), 100.0, "v"
    )
    assert [label["Name"] for label in top["Labels"]] == names[:2]
    none = rk.detect_labels(
        result, None, labels_request(MaxLabels=0), vocabulary, rk.CssColours(), 100.0, "v"
    )
    assert none["Labels"] == []


def test_person_leads_on_the_astronaut(services: Services, sample_dir: Path, vocabulary: Vocabulary) -> None:
    results, _ = analysed(services, ("labels",), (sample_dir / "astronaut.png").read_bytes())
    response = rk.detect_labels(
        typed(results, "labels", LabelsResult),
        None,
        labels_request(),
        vocabulary,
        rk.CssColours(),
        100.0,
        "v",
    )
    names = [label["Name"] for label in response["Labels"]]
    assert "Person" in names[:3], names  # at the default MinConfidence 55
    person = next(label for label in response["Labels"] if label["Name"] == "Person")
    assert person["Categories"] == [{"Name": "Person Description"}]


def test_label_filters(services: Services, sample_dir: Path, vocabulary: Vocabulary) -> None:
    results, _ = analysed(services, ("labels",), (sample_dir / "astronaut.png").read_bytes())
    labels = typed(results, "labels", LabelsResult)

    def names(**general: Any) -> set[str]:
        request = labels_request(MinConfidence=0, Settings={"GeneralLabels": general})
        response = rk.detect_labels(labels, None, request, vocabulary, rk.CssColours(), 100.0, "v")
        return {label["Name"] for label in response["Labels"]}

    everything = names()
    assert names(LabelInclusionFilters=["person", "Smile"]) == {"Person", "Smile"}
    assert names(LabelExclusionFilters=["Person"]) == everything - {"Person"}
    people = names(LabelCategoryInclusionFilters=["Person Description"])
    assert {"Person", "Face"} <= people < everything and "Smile" not in people  # an expression
    assert names(LabelCategoryExclusionFilters=["person description"]) == everything - people


def test_image_properties(services: Services, sample_dir: Path, vocabulary: Vocabulary) -> None:
    results, _ = analysed(services, ("labels", "properties"), (sample_dir / "chelsea.png").read_bytes())
    request = labels_request(
        Features=["IMAGE_PROPERTIES"], Settings={"ImageProperties": {"MaxDominantColors": 2}}
    )
    props = typed(results, "properties", PropertiesResult)
    response = rk.detect_labels(
        typed(results, "labels", LabelsResult), props, request, vocabulary, rk.CssColours(), 100.0, "v"
    )
    conforms(response, output("DetectLabels"))
    assert response["Labels"] == []
    quality = response["ImageProperties"]["Quality"]
    assert quality["Brightness"] == pytest.approx(100 * props.brightness, abs=0.01)
    assert 50 < quality["Sharpness"] < 100  # in focus: above the blur threshold's 50
    assert 0 < quality["Contrast"] <= 100
    colours = response["ImageProperties"]["DominantColors"]
    assert len(colours) == 2
    first = colours[0]
    assert first["HexCode"] == props.colours[0].hex
    assert f"#{first['Red']:02x}{first['Green']:02x}{first['Blue']:02x}" == first["HexCode"]
    assert first["SimplifiedColor"] == "brown" and first["PixelPercent"] == pytest.approx(
        100 * props.colours[0].fraction
    )
    assert first["CSSColor"] in {
        "rosybrown",
        "sienna",
        "peru",
        "tan",
        "sandybrown",
        "burlywood",
        "saddlebrown",
        "indianred",
        "gray",
        "grey",
        "dimgray",
        "dimgrey",
    }


# ---- DetectLabels: Instances from the objects analyzer -----------------------------------------------

PEOPLE = LabelsResult(
    labels=(
        Label("person", "Person", 0.95, (), "Person Description", ("faces", "objects"), 2),
        Label("cat", "Cat", 0.8, ("pet", "animal"), "Animals and Pets", ("objects",), 1),
        Label("pet", "Pet", 0.8, ("animal",), "Animals and Pets", ("objects",)),
        Label("animal", "Animal", 0.8, (), "Animals and Pets", ("objects",)),
    )
)
FOUND = ObjectsResult(
    (
        DetectedObject("person", "Person", "person", 0.9, Box(0.25, 0.125, 0.75, 1.0), 0.7),
        DetectedObject("cat", "Cat", "cat", 0.8, Box(0.0, 0.5, 0.5, 0.75), 0.6, parents=("pet", "animal")),
        DetectedObject("person", "Person", "person", 0.4, Box(0.5, 0.0, 1.0, 0.5), 0.3),
    )
)


def instances(objects: ObjectsResult | None, vocabulary: Vocabulary, **params: Any) -> dict[str, Any]:
    """Label name -> its Instances, from PEOPLE and `objects` under the request `params`."""
    response = rk.detect_labels(
        PEOPLE, None, labels_request(**params), vocabulary, rk.CssColours(), 100.0, "v", objects
    )
    conforms(response, output("DetectLabels"))
    return {label["Name"]: label["Instances"] for label in response["Labels"]}


def test_instances_are_the_labels_object_boxes_as_ratios(vocabulary: Vocabulary) -> None:
    found = instances(FOUND, vocabulary, MinConfidence=0)
    assert found["Person"] == [  # by descending confidence
        {"BoundingBox": {"Width": 0.5, "Height": 0.875, "Left": 0.25, "Top": 0.125}, "Confidence": 90.0},
        {"BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.5, "Top": 0.0}, "Confidence": 40.0},
    ]
    assert found["Cat"] == [
        {"BoundingBox": {"Width": 0.5, "Height": 0.25, "Left": 0.0, "Top": 0.5}, "Confidence": 80.0}
    ]
    assert found["Pet"] == found["Animal"] == []  # a parent label has no boxes of its own, as at AWS
    edge = rk.bounding_box(Box(-1e-7, 0.0, 1 + 1e-7, 1.0))  # within a Box's tolerance of the edges
    assert edge == {"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0}


def test_min_confidence_and_max_labels_apply_to_instances(vocabulary: Vocabulary) -> None:
    default = instances(FOUND, vocabulary)  # MinConfidence 55
    assert [i["Confidence"] for i in default["Person"]] == [90.0]
    assert [i["Confidence"] for i in instances(FOUND, vocabulary, MinConfidence=85)["Person"]] == [90.0]
    assert "Cat" not in instances(FOUND, vocabulary, MinConfidence=85)  # the label, instances and all
    assert list(instances(FOUND, vocabulary, MinConfidence=0, MaxLabels=1)) == ["Person"]
    assert instances(FOUND, vocabulary, MaxLabels=0) == {}


def test_label_filters_and_features_apply_to_instances(vocabulary: Vocabulary) -> None:
    without_people = instances(
        FOUND, vocabulary, MinConfidence=0, Settings={"GeneralLabels": {"LabelExclusionFilters": ["person"]}}
    )
    assert "Person" not in without_people and len(without_people["Cat"]) == 1
    only_pets = instances(
        FOUND,
        vocabulary,
        MinConfidence=0,
        Settings={"GeneralLabels": {"LabelCategoryInclusionFilters": ["Animals and Pets"]}},
    )
    assert set(only_pets) == {"Cat", "Pet", "Animal"}
    assert instances(FOUND, vocabulary, Features=["IMAGE_PROPERTIES"]) == {}  # no GENERAL_LABELS


def test_no_objects_means_empty_instances(vocabulary: Vocabulary) -> None:
    for objects in (None, ObjectsResult.empty()):  # switched off (not analysed), or nothing found
        found = instances(objects, vocabulary, MinConfidence=0)
        assert set(found) == {"Person", "Cat", "Pet", "Animal"} and not any(found.values())


def test_detect_labels_runs_objects_unless_switched_off() -> None:
    everything = ("labels", "safety", "faces", "objects", "pose", "properties", "text")
    assert labels_analyzers(labels_request(), everything) == ("labels", "objects")
    both = labels_request(Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"])
    assert labels_analyzers(both, everything) == ("labels", "objects", "properties")
    assert labels_analyzers(labels_request(), ("labels", "faces")) == ("labels",)  # FEEDLENS_ANALYZERS
    only_properties = labels_request(Features=["IMAGE_PROPERTIES"])
    assert labels_analyzers(only_properties, everything) == ("labels", "properties")  # no boxes needed


def test_person_instances_on_the_astronaut(
    services: Services, sample_dir: Path, vocabulary: Vocabulary
) -> None:
    data = (sample_dir / "astronaut.png").read_bytes()
    results, versions = analysed(services, ("labels", "objects", "faces"), data)
    objects = typed(results, "objects", ObjectsResult)
    response = rk.detect_labels(
        typed(results, "labels", LabelsResult),
        None,
        labels_request(MinConfidence=0),
        vocabulary,
        rk.CssColours(),
        100.0,
        versions["labels"],
        objects,
    )
    conforms(response, output("DetectLabels"))
    person = next(label for label in response["Labels"] if label["Name"] == "Person")
    people = [o for o in objects.objects if o.id == "person"]
    assert people and len(person["Instances"]) == len(people)
    first = person["Instances"][0]
    assert first["BoundingBox"] == rk.bounding_box(people[0].box)
    assert first["Confidence"] == rk.percent(people[0].score)
    box = first["BoundingBox"]
    assert min(box.values()) >= 0 and max(box.values()) <= 1
    assert box["Left"] + box["Width"] <= 1 + 1e-9 and box["Top"] + box["Height"] <= 1 + 1e-9
    face = typed(results, "faces", FacesResult).faces[0].box  # her face lies inside her box
    assert box["Left"] <= face.x0 and face.x1 <= box["Left"] + box["Width"]
    assert box["Top"] <= face.y0 and face.y1 <= box["Top"] + box["Height"]


def test_css_colours_are_the_nearest_named_ones() -> None:
    names = rk.CssColours()
    assert names([100.0, 0.0, 0.0]) == "white"
    assert names([0.0, 0.0, 0.0]) == "black"
    assert names([53.24, 80.09, 67.20]) == "red"  # sRGB #ff0000
    assert names([32.30, 79.19, -107.86]) == "blue"  # sRGB #0000ff


def test_blur_maps_below_50_and_the_threshold_to_50() -> None:
    grey = DominantColour("#777777", (50.0, 0.0, 0.0), 1.0, "gray")
    props = PropertiesResult(
        colours=(grey,),
        brightness=0.5,
        contrast=0.5,  # the most an RMS contrast of L*/100 can be: half black, half white
        sharpness=100.0,
        blurry=False,
        colourfulness=0.0,
        orientation=Orientation.SQUARE,
        aspect_ratio=1.0,
        phash="0" * 16,
        dhash="f" * 16,
    )
    quality = rk.image_properties(props, 10, rk.CssColours(), 100.0)["Quality"]
    assert quality == {"Brightness": 50.0, "Sharpness": 50.0, "Contrast": 100.0}
    blurred = dataclasses.replace(props, sharpness=20.0, blurry=True)
    assert rk.image_properties(blurred, 10, rk.CssColours(), 100.0)["Quality"]["Sharpness"] < 20


# ---- DetectModerationLabels --------------------------------------------------------------------------


def region(detector_class: str, category: str, score: float) -> SafetyRegion:
    return SafetyRegion(Category(category), "t", detector_class, score, Box(0.1, 0.1, 0.2, 0.2))


def test_moderation_levels_follow_rekognitions_taxonomy() -> None:
    safety = SafetyResult(
        Verdict.EXPLICIT,
        {"explicit_nudity": 0.8, "suggestive": 0.4},
        (
            region("FEMALE_BREAST_EXPOSED", "explicit_nudity", 0.8),
            region("BUTTOCKS_EXPOSED", "explicit_nudity", 0.6),
            region("BELLY_EXPOSED", "suggestive", 0.4),
        ),
    )
    response = rk.detect_moderation_labels(safety, 50.0, "safety-1")
    conforms(response, output("DetectModerationLabels"))
    got = [
        (m["Name"], m["ParentName"], m["TaxonomyLevel"], m["Confidence"])
        for m in response["ModerationLabels"]
    ]
    assert got == [
        ("Explicit", "", 1, 80.0),
        ("Explicit Nudity", "Explicit", 2, 80.0),
        ("Exposed Female Nipple", "Explicit Nudity", 3, 80.0),
        ("Exposed Buttocks or Anus", "Explicit Nudity", 3, 60.0),
    ]
    lower = rk.detect_moderation_labels(safety, 30.0, "safety-1")["ModerationLabels"]
    assert ("Swimwear or Underwear", "", 1) in [
        (m["Name"], m["ParentName"], m["TaxonomyLevel"]) for m in lower
    ]
    scores = {"explicit_nudity": 0.0, "suggestive": 0.9}
    unknown = SafetyResult(Verdict.SUGGESTIVE, scores, (region("SOMETHING_NEW", "suggestive", 0.9),))
    assert [m["Name"] for m in rk.detect_moderation_labels(unknown, 50.0, "v")["ModerationLabels"]] == [
        "Swimwear or Underwear"
    ]


def test_every_nudenet_moderation_class_has_a_path() -> None:
    from feedlens.analyzers.safety import TAXONOMY

    assert set(TAXONOMY) == set(rk.MODERATION_PATHS)


def test_safe_samples_have_no_moderation_labels(services: Services, sample_dir: Path) -> None:
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        results, versions = analysed(services, ("safety",), (sample_dir / name).read_bytes())
        response = rk.detect_moderation_labels(
            typed(results, "safety", SafetyResult), 50.0, versions["safety"]
        )
        conforms(response, output("DetectModerationLabels"))
        assert response["ModerationLabels"] == [], name


# ---- DetectText --------------------------------------------------------------------------------------


def test_words_get_proportional_boxes() -> None:
    line = TextLine("ab  cd", 0.9, Box(0.0, 0.1, 0.6, 0.2), "ocr")
    (first, box1), (second, box2) = rk.split_words(line)
    assert (first, second) == ("ab", "cd")
    assert (box1.x0, box1.x1) == pytest.approx((0.0, 0.2))
    assert (box2.x0, box2.x1) == pytest.approx((0.4, 0.6))
    assert (box1.y0, box1.y1) == (box2.y0, box2.y1) == (0.1, 0.2)


def test_detect_text_on_a_rendered_image(services: Services) -> None:
    results, versions = analysed(services, ("text",), render(["HELLO FEEDLENS", "coffee time 2024"]))
    text = typed(results, "text", TextResult)
    response = rk.detect_text(text, rq.TextRequest.parse({}), versions["text"])
    conforms(response, output("DetectText"))
    assert response["TextModelVersion"] == versions["text"]
    lines = [d for d in response["TextDetections"] if d["Type"] == "LINE"]
    words = [d for d in response["TextDetections"] if d["Type"] == "WORD"]
    # the recogniser may read a row as several segments; the words and their order are what is stable
    assert " ".join(line["DetectedText"] for line in lines).split() == [
        "HELLO",
        "FEEDLENS",
        "coffee",
        "time",
        "2024",
    ]
    assert [w["DetectedText"] for w in words] == ["HELLO", "FEEDLENS", "coffee", "time", "2024"]
    assert [d["Id"] for d in response["TextDetections"]] == list(range(len(lines) + len(words)))
    for word in words:
        line = lines[word["ParentId"]]
        assert word["DetectedText"] in line["DetectedText"].split()
        parent, box = line["Geometry"]["BoundingBox"], word["Geometry"]["BoundingBox"]
        assert parent["Left"] - 1e-9 <= box["Left"]
        assert box["Left"] + box["Width"] <= parent["Left"] + parent["Width"] + 1e-9
        assert box["Top"] == parent["Top"] and len(word["Geometry"]["Polygon"]) == 4

    def kept(**filters: Any) -> list[str]:
        request = rq.TextRequest.parse({"Filters": filters})
        found = rk.detect_text(text, request, "v")["TextDetections"]
        return [d["DetectedText"] for d in found if d["Type"] == "WORD"]

    top_half = {"BoundingBox": {"Left": 0, "Top": 0, "Width": 1, "Height": 0.4}}
    assert kept(RegionsOfInterest=[top_half]) == ["HELLO", "FEEDLENS"]
    assert kept(WordFilter={"MinBoundingBoxWidth": 0.3}) == ["FEEDLENS"]
    weakest = min(text.lines, key=lambda line: line.confidence)
    above = kept(WordFilter={"MinConfidence": 100.0 * weakest.confidence + 0.001})
    assert above == [w for w in kept() if w not in weakest.text.split()]


def test_detect_text_keeps_at_most_100_words() -> None:
    line = TextLine(" ".join(["w"] * 60), 0.9, Box(0.0, 0.0, 1.0, 0.1), "ocr")
    response = rk.detect_text(TextResult.of([[line], [line]]), rq.TextRequest.parse({}), "v")
    assert sum(d["Type"] == "WORD" for d in response["TextDetections"]) == 100
    assert sum(d["Type"] == "LINE" for d in response["TextDetections"]) == 2


# ---- DetectFaces -------------------------------------------------------------------------------------


def test_detect_faces_on_the_astronaut(services: Services, sample_dir: Path) -> None:
    results, _ = analysed(services, ("faces",), (sample_dir / "astronaut.png").read_bytes())
    faces = typed(results, "faces", FacesResult)
    response = detect_faces(faces, {"ALL"})
    conforms(response, output("DetectFaces"))
    (face,) = response["FaceDetails"]
    assert face["Emotions"][0]["Type"] == "HAPPY" and face["Emotions"][0]["Confidence"] > 90
    assert {e["Type"] for e in face["Emotions"]} == {
        "HAPPY",
        "SAD",
        "ANGRY",
        "CONFUSED",
        "DISGUSTED",
        "SURPRISED",
        "CALM",
        "FEAR",
    }
    assert sum(e["Confidence"] for e in face["Emotions"]) == pytest.approx(100, abs=0.01)
    box = face["BoundingBox"]
    assert 0.3 < box["Left"] < 0.4 and 0.1 < box["Top"] < 0.2 and 0 < box["Width"] < 0.3
    assert 0 < face["Confidence"] <= 100
    plain = detect_faces(faces, {"DEFAULT"})["FaceDetails"][0]
    assert "Emotions" not in plain and "Smile" not in plain and plain["BoundingBox"] == box


def test_neutral_is_calm_and_confused_has_no_source() -> None:
    emotions = {
        "angry": 0.0,
        "disgust": 0.0,
        "fear": 0.0,
        "happy": 0.1,
        "sad": 0.0,
        "surprise": 0.0,
        "neutral": 0.9,
    }
    faces = FacesResult.of([Face(Box(0, 0, 0.5, 0.5), 0.9, "d", emotions, "neutral")])
    found = {
        e["Type"]: e["Confidence"] for e in detect_faces(faces, {"EMOTIONS"})["FaceDetails"][0]["Emotions"]
    }
    assert found["CALM"] == 90.0 and found["HAPPY"] == 10.0 and found["CONFUSED"] == 0.0


def test_tables_are_built_from_the_store(services: Services) -> None:
    class Holder:  # the part of AppState build_tables reads
        def __init__(self) -> None:
            self.services = services
            self.settings = services.settings

    tables = build_tables(Holder())  # type: ignore[arg-type]
    assert tables.vocabulary.label("cat").name == "Cat"
    assert tables.colours([100.0, 0.0, 0.0]) == "white"


def test_results_round_trip_and_map_the_same(
    services: Services, sample_dir: Path, vocabulary: Vocabulary
) -> None:
    """The result types the mappers read come back equal from their stored (JSON) form, and a stored
    analysis maps onto the very same responses as a fresh one."""
    names = ("labels", "properties", "safety", "faces", "objects")
    photo, _ = analysed(services, names, (sample_dir / "astronaut.png").read_bytes())
    words, _ = analysed(services, ("text",), render(["HELLO FEEDLENS", "coffee time 2024"]))
    scores = {"explicit_nudity": 0.8, "suggestive": 0.4}
    regions = (
        region("FEMALE_BREAST_EXPOSED", "explicit_nudity", 0.8),
        region("BELLY_EXPOSED", "suggestive", 0.4),
    )
    fresh: dict[str, Any] = {
        "labels": typed(photo, "labels", LabelsResult),
        "properties": typed(photo, "properties", PropertiesResult),
        "safety": typed(photo, "safety", SafetyResult),
        "faces": typed(photo, "faces", FacesResult),
        "objects": typed(photo, "objects", ObjectsResult),
        "text": typed(words, "text", TextResult),
        "moderation": SafetyResult(Verdict.EXPLICIT, scores, regions),
    }
    assert (
        fresh["faces"].count == 1 and fresh["text"].lines and fresh["objects"].objects
    )  # something to compare
    stored = {}
    for name, result in fresh.items():
        back = type(result).from_dict(json.loads(json.dumps(result.to_dict())))
        assert back == result, name
        stored[name] = back

    def responses(r: dict[str, Any]) -> list[dict[str, Any]]:
        request = labels_request(Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"], MinConfidence=0)
        colours = rk.CssColours()
        return [
            rk.detect_labels(
                r["labels"], r["properties"], request, vocabulary, colours, 100.0, "v", r["objects"]
            ),
            rk.detect_moderation_labels(r["safety"], 0.0, "v"),
            rk.detect_moderation_labels(r["moderation"], 0.0, "v"),
            rk.detect_text(r["text"], rq.TextRequest.parse({}), "v"),
            detect_faces(r["faces"], {"ALL"}),
        ]

    assert json.dumps(responses(stored)) == json.dumps(responses(fresh))
