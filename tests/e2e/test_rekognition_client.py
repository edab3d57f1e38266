"""The real boto3 Rekognition client against a real feedlens server: every operation on the sample photos,
Rekognition's errors (as botocore surfaces them), SigV4 refusals, rate limits and a full inference queue."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import botocore
import httpx
import numpy as np
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw, ImageFont

from feedlens.services.access import AccessService
from feedlens.storage.database import Database
from tests.conftest import encode, gradient
from tests.e2e.server import RELAXED_LIMITS, Launch, Server
from tests.support.fonts import DEJAVU_BOLD
from tests.support.headlines import SAMPLE_HEADLINES

FONT = DEJAVU_BOLD
AWS_JSON = "application/x-amz-json-1.1"
MAX_REQUEST = 8 * 1024 * 1024  # the server's body cap: above AWS's 5 MB image once base64-encoded


def credentials(server: Server, key: str) -> tuple[str, str]:
    database = Database(server.database_url)
    try:
        found = AccessService(database).aws_credentials(key)
    finally:
        database.dispose()
    assert found is not None
    return found


def rekognition(server: Server, pair: tuple[str, str], **config: Any) -> Any:
    """boto3's client exactly as a user makes one, pointed at feedlens; no retries (errors surface once)."""
    return boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=pair[0],
        aws_secret_access_key=pair[1],
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def server(launch: Launch) -> Server:
    """Its own server: an 8 MB body cap and a 20 Mpx limit (not the defaults), which the size tests probe."""
    env = {
        **RELAXED_LIMITS,
        "FEEDLENS_API__MAX_REQUEST_BYTES": str(MAX_REQUEST),
        "FEEDLENS_DECODE__MAX_PIXELS": "20000000",
    }
    return launch("rekognition", env)


@pytest.fixture(scope="module")
def pair(server: Server) -> tuple[str, str]:
    return credentials(server, server.key("team-a", "read"))


@pytest.fixture(scope="module")
def client(server: Server, pair: tuple[str, str]) -> Any:
    return rekognition(server, pair)


def sample(sample_dir: Path, name: str) -> bytes:
    return (sample_dir / name).read_bytes()


def rendered(lines: list[str]) -> bytes:
    image = Image.new("RGB", (800, 300), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 48)
    for row, text in enumerate(lines):
        draw.text((40, 40 + 120 * row), text, fill="black", font=font)
    return encode(image, "PNG")


# ---- operations --------------------------------------------------------------------------------------


def test_detect_labels_finds_the_cat_with_its_parents(client: Any, sample_dir: Path) -> None:
    response = client.detect_labels(Image={"Bytes": sample(sample_dir, "chelsea.png")})
    labels = {label["Name"]: label for label in response["Labels"]}
    cat = labels["Cat"]
    assert cat["Confidence"] > 70
    assert {"Pet", "Mammal", "Animal"} <= {p["Name"] for p in cat["Parents"]}
    assert cat["Categories"] == [{"Name": "Animals and Pets"}]  # AWS-style label categories
    assert {"Kitten", "Kitty"} & {a["Name"] for a in cat["Aliases"]}
    (whole,) = cat["Instances"]  # the cat's box from the objects analyzer; its parents have none
    assert whole["Confidence"] >= 55 and whole["BoundingBox"]["Width"] > 0.5
    assert all(labels[p["Name"]]["Instances"] == [] for p in cat["Parents"] if p["Name"] in labels)
    assert response["Labels"][0]["Name"] == "Cat"  # the most specific confident label first
    assert all(label["Confidence"] >= 55 for label in response["Labels"])  # Rekognition's default
    assert response["LabelModelVersion"].startswith("labels-")
    assert "ImageProperties" not in response


@pytest.mark.parametrize(("name", "expected"), sorted(SAMPLE_HEADLINES.items()))
def test_samples_are_named_in_everyday_words_at_default_settings(
    client: Any, sample_dir: Path, name: str, expected: set[str]
) -> None:
    response = client.detect_labels(Image={"Bytes": sample(sample_dir, name)})
    first = [label["Name"] for label in response["Labels"][:3]]
    assert expected & set(first), first


def test_detect_labels_boxes_the_astronaut(client: Any, sample_dir: Path) -> None:
    image = {"Bytes": sample(sample_dir, "astronaut.png")}
    # 40: below the Person box's calibrated score (about 58 at the default 55) with room to spare
    labels = {label["Name"]: label for label in client.detect_labels(Image=image, MinConfidence=40)["Labels"]}
    people = labels["Person"]["Instances"]
    assert people and all(p["Confidence"] >= 40 for p in people)
    assert [p["Confidence"] for p in people] == sorted((p["Confidence"] for p in people), reverse=True)
    (face,) = client.detect_faces(Image=image)["FaceDetails"]
    f = face["BoundingBox"]
    for person in people:
        box = person["BoundingBox"]
        assert all(0 <= box[k] <= 1 for k in ("Left", "Top", "Width", "Height"))
        assert box["Left"] + box["Width"] <= 1 + 1e-9 and box["Top"] + box["Height"] <= 1 + 1e-9

    def overlaps(box: dict[str, float]) -> bool:
        across = min(box["Left"] + box["Width"], f["Left"] + f["Width"]) - max(box["Left"], f["Left"])
        down = min(box["Top"] + box["Height"], f["Top"] + f["Height"]) - max(box["Top"], f["Top"])
        return across > 0 and down > 0

    assert any(overlaps(p["BoundingBox"]) for p in people)
    # MinConfidence applies to instances too: just above the best box, Person stays (its label is surer
    # than any one box: the face, the classifier and the pose agree) but without instances
    above = people[0]["Confidence"] + 0.01
    assert labels["Person"]["Confidence"] > above
    sure = {
        label["Name"]: label for label in client.detect_labels(Image=image, MinConfidence=above)["Labels"]
    }
    assert sure["Person"]["Instances"] == []


def test_detect_labels_with_objects_switched_off(launch: Launch, sample_dir: Path) -> None:
    """An operator who leaves `objects` out of FEEDLENS_ANALYZERS: labels as usual, Instances empty."""
    labels_only = launch("rekognition-labels-only", {**RELAXED_LIMITS, "FEEDLENS_ANALYZERS": "labels"})
    client = rekognition(labels_only, credentials(labels_only, labels_only.key("team-a", "read")))
    response = client.detect_labels(Image={"Bytes": sample(sample_dir, "chelsea.png")}, MinConfidence=0)
    assert response["Labels"][0]["Name"] == "Cat"
    assert all(label["Instances"] == [] for label in response["Labels"])
    # an operation whose analyzer is off: AWS's own "invalid parameter", saying why, never a 500
    with pytest.raises(ClientError) as refused:
        client.detect_faces(Image={"Bytes": sample(sample_dir, "chelsea.png")})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "switched off" in refused.value.response["Error"]["Message"]


def test_max_labels_and_min_confidence_are_honoured(client: Any, sample_dir: Path) -> None:
    image = {"Bytes": sample(sample_dir, "chelsea.png")}
    everything = client.detect_labels(Image=image, MinConfidence=0)["Labels"]
    top = client.detect_labels(Image=image, MinConfidence=0, MaxLabels=3)["Labels"]
    assert [label["Name"] for label in top] == [label["Name"] for label in everything[:3]]
    confident = client.detect_labels(Image=image, MinConfidence=93)["Labels"]
    assert confident and all(label["Confidence"] >= 93 for label in confident)
    assert len(confident) < len(everything)
    assert {label["Name"] for label in confident} < {label["Name"] for label in everything}


def test_image_properties(client: Any, sample_dir: Path) -> None:
    response = client.detect_labels(
        Image={"Bytes": sample(sample_dir, "coffee.png")},
        Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"],
        Settings={"ImageProperties": {"MaxDominantColors": 3}},
    )
    assert response["Labels"]
    properties = response["ImageProperties"]
    assert set(properties["Quality"]) == {"Brightness", "Sharpness", "Contrast"}
    assert all(0 <= v <= 100 for v in properties["Quality"].values())
    colours = properties["DominantColors"]
    assert 1 <= len(colours) <= 3
    assert all(c["HexCode"].startswith("#") and c["CSSColor"] and c["SimplifiedColor"] for c in colours)
    assert sum(c["PixelPercent"] for c in colours) <= 100.01


def test_detect_faces_sees_the_astronaut_smile(client: Any, sample_dir: Path) -> None:
    image = {"Bytes": sample(sample_dir, "astronaut.png")}
    (face,) = client.detect_faces(Image=image, Attributes=["ALL"])["FaceDetails"]
    assert face["Emotions"][0]["Type"] == "HAPPY" and face["Emotions"][0]["Confidence"] > 90
    box = face["BoundingBox"]
    assert 0 < box["Left"] < 1 and 0 < box["Top"] < 1 and 0 < box["Width"] < 0.5 and 0 < box["Height"] < 0.5
    assert face["Smile"]["Value"] and face["EyesOpen"]["Value"] and len(face["Landmarks"]) >= 25
    assert "AgeRange" not in face and "Gender" not in face and "Eyeglasses" not in face  # no source
    (plain,) = client.detect_faces(Image=image)["FaceDetails"]  # DEFAULT attributes
    assert "Emotions" not in plain and "Smile" not in plain and plain["BoundingBox"] == box
    assert {"Pose", "Quality"} <= set(plain) and len(plain["Landmarks"]) == 5
    marks = {m["Type"]: m["X"] for m in plain["Landmarks"]}
    assert marks["eyeLeft"] < marks["nose"] < marks["eyeRight"] and abs(plain["Pose"]["Yaw"]) < 20
    assert client.detect_faces(Image={"Bytes": sample(sample_dir, "coffee.png")})["FaceDetails"] == []


def test_detect_text_reads_lines_and_words(client: Any) -> None:
    response = client.detect_text(Image={"Bytes": rendered(["HELLO FEEDLENS", "coffee time 2024"])})
    detections = response["TextDetections"]
    lines = [d for d in detections if d["Type"] == "LINE"]
    words = [d for d in detections if d["Type"] == "WORD"]
    assert [w["DetectedText"] for w in words] == ["HELLO", "FEEDLENS", "coffee", "time", "2024"]
    for word in words:
        assert word["DetectedText"] in lines[word["ParentId"]]["DetectedText"].split()
        box = word["Geometry"]["BoundingBox"]
        assert 0 <= box["Left"] < box["Left"] + box["Width"] <= 1
        assert len(word["Geometry"]["Polygon"]) == 4
    assert response["TextModelVersion"].startswith("text-")


def test_safe_samples_get_no_moderation_labels(client: Any, sample_dir: Path) -> None:
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        response = client.detect_moderation_labels(Image={"Bytes": sample(sample_dir, name)})
        assert response["ModerationLabels"] == [], name
        assert response["ModerationModelVersion"].startswith("safety-")


# ---- Rekognition's errors ----------------------------------------------------------------------------


def noise_png(megabytes: float) -> bytes:
    """A PNG of about this many megabytes (random pixels do not compress)."""
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5) + 1
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def test_oversized_images_are_image_too_large(client: Any) -> None:
    over_aws = noise_png(5.1)  # over Rekognition's 5 MB, under the server's body cap once encoded
    assert len(over_aws) > 5 * 1024 * 1024 and len(over_aws) * 4 / 3 < MAX_REQUEST
    with pytest.raises(client.exceptions.ImageTooLargeException):
        client.detect_labels(Image={"Bytes": over_aws})
    over_cap = noise_png(6.5)  # refused by the app-wide body cap, answered in Rekognition's shape
    assert len(over_cap) * 4 / 3 > MAX_REQUEST
    with pytest.raises(client.exceptions.ImageTooLargeException):
        client.detect_faces(Image={"Bytes": over_cap})
    too_many_pixels = encode(gradient(6000, 4000), "JPEG", quality=30)  # over the 20 MP decode limit
    with pytest.raises(client.exceptions.ImageTooLargeException):
        client.detect_text(Image={"Bytes": too_many_pixels})


def test_data_that_is_not_an_image_is_invalid_image_format(client: Any, sample_dir: Path) -> None:
    for data in (b"%PDF-1.4 not an image at all", sample(sample_dir, "chelsea.png")[:2000]):
        with pytest.raises(client.exceptions.InvalidImageFormatException) as caught:
            client.detect_labels(Image={"Bytes": data})
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("detect_labels", {"MinConfidence": 150}),
        ("detect_labels", {"Features": ["OBJECTS"]}),
        ("detect_labels", {"Settings": {"ImageProperties": {"MaxDominantColors": 50}}}),
        ("detect_faces", {"Attributes": ["NOSE"]}),
        ("detect_moderation_labels", {"MinConfidence": 101}),
        ("detect_text", {"Filters": {"WordFilter": {"MinBoundingBoxHeight": 2}}}),
    ],
)
def test_bad_parameters_are_invalid_parameter(
    client: Any, sample_dir: Path, operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(client.exceptions.InvalidParameterException):
        getattr(client, operation)(Image={"Bytes": sample(sample_dir, "coffee.png")}, **params)


def test_s3_objects_are_not_supported(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterException) as caught:
        client.detect_labels(Image={"S3Object": {"Bucket": "photos", "Name": "cat.jpg"}})
    assert "S3" in caught.value.response["Error"]["Message"]


def test_unsupported_operations_are_unknown(client: Any, sample_dir: Path) -> None:
    image = {"Bytes": sample(sample_dir, "astronaut.png")}
    with pytest.raises(ClientError) as caught:  # CompareFaces and collections: test_face_identity_client.py
        client.recognize_celebrities(Image=image)
    assert error_of(caught) == ("UnknownOperationException", 400)
    assert "no celebrity data" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        client.detect_protective_equipment(Image=image)
    assert error_of(caught) == ("UnknownOperationException", 400)


# ---- authentication ----------------------------------------------------------------------------------


def test_a_wrong_secret_is_refused(server: Server, pair: tuple[str, str], sample_dir: Path) -> None:
    forged = rekognition(server, (pair[0], pair[1][::-1]))
    with pytest.raises(ClientError) as caught:
        forged.detect_labels(Image={"Bytes": sample(sample_dir, "coffee.png")})
    assert error_of(caught) == ("InvalidSignatureException", 400)


def test_an_unknown_access_key_is_refused(server: Server, pair: tuple[str, str], sample_dir: Path) -> None:
    for key_id in ("feedlens-999999", "AKIAIOSFODNN7EXAMPLE"):
        with pytest.raises(ClientError) as caught:
            rekognition(server, (key_id, pair[1])).detect_faces(
                Image={"Bytes": sample(sample_dir, "coffee.png")}
            )
        assert error_of(caught) == ("UnrecognizedClientException", 400)


def test_an_unsigned_request_is_refused(server: Server, sample_dir: Path) -> None:
    anonymous = rekognition(server, ("x", "y"), signature_version=botocore.UNSIGNED)
    with pytest.raises(ClientError) as caught:
        anonymous.detect_labels(Image={"Bytes": sample(sample_dir, "coffee.png")})
    assert error_of(caught) == ("MissingAuthenticationTokenException", 400)


def test_a_revoked_key_is_refused(server: Server, sample_dir: Path) -> None:
    key = server.key("team-a", "read")
    pair = credentials(server, key)
    own = rekognition(server, pair)
    image = {"Bytes": sample(sample_dir, "coffee.png")}
    assert own.detect_faces(Image=image)["FaceDetails"] == []
    database = Database(server.database_url)
    try:
        assert AccessService(database).revoke_key("team-a", int(pair[0].removeprefix("feedlens-")))
    finally:
        database.dispose()
    with pytest.raises(ClientError) as caught:
        own.detect_faces(Image=image)
    assert error_of(caught) == ("UnrecognizedClientException", 400)


def signed_post(
    server: Server, pair: tuple[str, str], body: bytes, target: str, query: str = ""
) -> httpx.Response:
    """A raw POST signed with botocore's signer, for bodies boto3 itself never sends."""
    request = AWSRequest(
        method="POST",
        url=f"{server.url}/{query}",
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": AWS_JSON},
    )
    SigV4Auth(Credentials(*pair), "rekognition", "us-east-1").add_auth(request)
    return httpx.post(
        f"{server.url}/{query}", content=body, headers=dict(request.headers.items()), timeout=60
    )


def is_rekognition_error(response: httpx.Response, code: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == AWS_JSON
    body = response.json()
    assert body["__type"] == code and body["Message"]


def test_raw_requests_get_rekognitions_errors_never_problem_json(
    server: Server, pair: tuple[str, str]
) -> None:
    detect = "RekognitionService.DetectLabels"
    is_rekognition_error(signed_post(server, pair, b"{not json", detect), "InvalidParameterException")
    is_rekognition_error(signed_post(server, pair, b"[]", detect), "InvalidParameterException")
    bad_base64 = json.dumps({"Image": {"Bytes": "***"}}).encode()
    is_rekognition_error(signed_post(server, pair, bad_base64, detect), "InvalidParameterException")
    is_rekognition_error(signed_post(server, pair, b"{}", "Other.DetectLabels"), "UnknownOperationException")
    # refused by the app-wide guard (NUL in the query) before the route: rewritten, not problem+json
    is_rekognition_error(signed_post(server, pair, b"{}", detect, "?a=%00"), "InvalidParameterException")
    unsigned = httpx.post(server.url + "/", content=b"{}", headers={"X-Amz-Target": detect})
    is_rekognition_error(unsigned, "MissingAuthenticationTokenException")
    # a chunked body (no Content-Length) over the cap is cut off while streaming, and still answered so
    chunks = (b"0" * (1024 * 1024) for _ in range(MAX_REQUEST // (1024 * 1024) + 1))
    chunked = httpx.post(server.url + "/", content=chunks, headers={"X-Amz-Target": detect}, timeout=60)
    is_rekognition_error(chunked, "ImageTooLargeException")
    assert httpx.get(server.url + "/openapi.json").json()["paths"]["/"]["post"]


# ---- rate limits and a full inference queue ----------------------------------------------------------


@pytest.fixture(scope="module")
def tight(launch: Launch) -> Server:
    """A second server of its own: a burst of 2, one request a minute, one inference worker, no queue."""
    env = {
        "FEEDLENS_API__BURST": "2",
        "FEEDLENS_API__RATE_PER_MINUTE": "1",
        "FEEDLENS_API__INFERENCE_WORKERS": "1",
        "FEEDLENS_API__QUEUE_SIZE": "0",
    }
    return launch("rekognition-tight", env)


def test_a_key_over_its_rate_limit_is_throttled(tight: Server, sample_dir: Path) -> None:
    client = rekognition(tight, credentials(tight, tight.key("team-a", "read")))
    image = {"Bytes": sample(sample_dir, "coffee.png")}
    for _ in range(2):  # the burst
        client.detect_faces(Image=image)
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException) as caught:
        client.detect_faces(Image=image)
    assert int(caught.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1


def test_a_full_inference_queue_is_throttling(tight: Server) -> None:
    # one worker and no queue: of requests sent together, the ones that find the worker busy are refused
    image = {"Bytes": rendered(["ONE TWO THREE FOUR", "five six seven eight"])}
    clients = [rekognition(tight, credentials(tight, tight.key("team-b", "read"))) for _ in range(4)]

    def call(client: Any) -> str:
        try:
            client.detect_text(Image=image)
        except client.exceptions.ThrottlingException as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            return "throttled"
        return "ok"

    with ThreadPoolExecutor(len(clients)) as pool:
        outcomes = list(pool.map(call, clients))
    assert "ok" in outcomes and "throttled" in outcomes, outcomes
