"""Google Cloud Vision compatibility as its users see it: the official `google-cloud-vision` client (REST
transport, API key) against a real feedlens server with real models, plus raw HTTP for the wire details."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import vision
from PIL import Image, ImageDraw, ImageFont

from tests.conftest import encode
from tests.e2e.server import Launch, Server, Team
from tests.support.fonts import DEJAVU_BOLD
from tests.support.headlines import SAMPLE_HEADLINES
from tests.support.logos import composite, logo, png

FONT = DEJAVU_BOLD
Type = vision.Feature.Type
Likely = vision.Likelihood
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
ANNOTATE = "/v1/images:annotate"
BURST = 40


@pytest.fixture(scope="module")
def server(launch: Launch) -> Server:
    """Its own server: URL fetching on, 2 MB / 8 MB byte limits and a burst of 40, what these tests run
    into. (The test of fetching turned off uses the e2e shared server, where it is off.)"""
    env = {
        "FEEDLENS_FETCH__ENABLED": "true",
        "FEEDLENS_FETCH__ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        "FEEDLENS_DECODE__MAX_BYTES": str(MAX_IMAGE_BYTES),
        "FEEDLENS_API__MAX_REQUEST_BYTES": str(MAX_BODY_BYTES),
        "FEEDLENS_API__BURST": str(BURST),
        "FEEDLENS_API__RATE_PER_MINUTE": "600",
    }
    return launch("gcv", env)


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.key("team-a", "read")


def client_for(server: Server, api_key: str) -> vision.ImageAnnotatorClient:
    """Exactly how a user points the official client elsewhere (api_key and credentials are exclusive)."""
    return vision.ImageAnnotatorClient(
        transport="rest", client_options={"api_endpoint": server.url, "api_key": api_key}
    )


@pytest.fixture(scope="module")
def client(server: Server, key: str) -> vision.ImageAnnotatorClient:
    return client_for(server, key)


@pytest.fixture(scope="module")
def photos(sample_dir: Path) -> dict[str, bytes]:
    return {name: (sample_dir / f"{name}.png").read_bytes() for name in ("chelsea", "astronaut", "coffee")}


def rendered(lines: list[str]) -> bytes:
    image = Image.new("RGB", (800, 300), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 48)
    for row, text in enumerate(lines):
        draw.text((40, 40 + 120 * row), text, fill="black", font=font)
    return encode(image, "PNG")


def xs_ys(poly: vision.BoundingPoly) -> tuple[list[int], list[int]]:
    return [v.x for v in poly.vertices], [v.y for v in poly.vertices]


def post(server: Server, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.url + ANNOTATE, json=body, timeout=120, **kwargs)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- every supported feature through the official client --------------------------------------------------


def test_label_detection_knows_the_cat(client: vision.ImageAnnotatorClient, photos: dict[str, bytes]) -> None:
    response = client.label_detection(image={"content": photos["chelsea"]}, max_results=20)
    assert not response.error.message
    names = [label.description for label in response.label_annotations]
    assert names[0] == "Cat" and {"Pet", "Mammal", "Animal"} <= set(names[:4])  # specific first
    cat = response.label_annotations[0]
    assert cat.score > 0.5 and cat.topicality == cat.score and cat.mid == "/feedlens/cat"
    assert 3 < len(names) <= 20
    assert (
        len(client.label_detection(image={"content": photos["chelsea"]}, max_results=3).label_annotations)
        == 3
    )


@pytest.mark.parametrize(("name", "expected"), sorted(SAMPLE_HEADLINES.items()))
def test_samples_are_named_in_everyday_words_at_default_settings(
    client: vision.ImageAnnotatorClient, sample_dir: Path, name: str, expected: set[str]
) -> None:
    response = client.label_detection(image={"content": (sample_dir / name).read_bytes()})
    first = [label.description for label in response.label_annotations[:3]]
    assert expected & set(first), first


def test_safe_search_on_safe_photos(client: vision.ImageAnnotatorClient, photos: dict[str, bytes]) -> None:
    for name in ("chelsea", "coffee", "astronaut"):
        found = client.safe_search_detection(image={"content": photos[name]}).safe_search_annotation
        assert found.adult in (Likely.VERY_UNLIKELY, Likely.UNLIKELY), name
        assert found.racy in (Likely.VERY_UNLIKELY, Likely.UNLIKELY), name
        assert (found.spoof, found.medical, found.violence) == (Likely.UNKNOWN,) * 3


def test_text_detection_reads_rendered_words(client: vision.ImageAnnotatorClient) -> None:
    image = {"content": rendered(["HELLO WORLD", "feedlens reads text"])}
    response = client.text_detection(image=image)
    full, *words = response.text_annotations
    assert full.description == "HELLO WORLD\nfeedlens reads text\n"
    assert [w.description for w in words] == ["HELLO", "WORLD", "feedlens", "reads", "text"]
    (hello_x, hello_y), (world_x, _) = xs_ys(words[0].bounding_poly), xs_ys(words[1].bounding_poly)
    assert 20 < min(hello_x) < max(hello_x) <= min(world_x) < max(world_x) < 800
    assert 20 < min(hello_y) < max(hello_y) < 150  # the first row, drawn at y = 40..95
    document = client.document_text_detection(image=image).full_text_annotation
    assert document.text == full.description
    (page,) = document.pages
    assert (page.width, page.height, len(page.blocks)) == (800, 300, 2)
    first = page.blocks[0].paragraphs[0].words[0]
    assert "".join(s.text for s in first.symbols) == "HELLO" and first.confidence > 0.5
    assert (
        first.symbols[-1].property.detected_break.type_ == vision.TextAnnotation.DetectedBreak.BreakType.SPACE
    )


def test_face_detection_finds_the_astronauts_smile(
    client: vision.ImageAnnotatorClient, photos: dict[str, bytes]
) -> None:
    (face,) = client.face_detection(image={"content": photos["astronaut"]}).face_annotations
    assert face.joy_likelihood in (Likely.LIKELY, Likely.VERY_LIKELY)
    assert face.sorrow_likelihood in (Likely.VERY_UNLIKELY, Likely.UNLIKELY)
    assert face.headwear_likelihood == Likely.UNKNOWN and face.detection_confidence > 0.5
    marks = {m.type_.name: m.position.x for m in face.landmarks}
    assert marks["LEFT_EYE"] < marks["NOSE_TIP"] < marks["RIGHT_EYE"]  # the viewer's left and right
    assert face.landmarking_confidence > 0.5 and abs(face.pan_angle) < 20
    xs, ys = xs_ys(face.fd_bounding_poly)
    assert 150 < min(xs) < max(xs) < 300 and 60 < min(ys) < max(ys) < 200  # her face in the 512 px photo
    assert not client.face_detection(image={"content": photos["chelsea"]}).face_annotations


def test_object_localization_finds_the_astronaut(
    client: vision.ImageAnnotatorClient, photos: dict[str, bytes]
) -> None:
    """The call of Google's object localization sample program, unchanged but for the endpoint."""
    image = vision.Image(content=photos["astronaut"])
    objects = client.object_localization(image=image).localized_object_annotations
    people = [o for o in objects if o.name == "Person"]
    assert people and people[0].mid == "/feedlens/person" and 0 < people[0].score <= 1
    assert [o.score for o in objects] == sorted((o.score for o in objects), reverse=True)
    corners = [(v.x, v.y) for v in people[0].bounding_poly.normalized_vertices]
    (x0, y0), (x1, _), (_, y1), _ = corners
    assert corners == [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]  # clockwise from the top left
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1  # inside the image, as ratios
    face = (173 / 512, 274 / 512, 60 / 512, 200 / 512)  # her face (x0, x1, y0, y1), see FACE_DETECTION
    assert x0 < face[0] and face[1] < x1 and y0 < face[2] and face[3] < y1
    one = client.object_localization(image=image, max_results=1).localized_object_annotations
    assert [o.name for o in one] == [objects[0].name]
    cup = client.object_localization(image={"content": photos["coffee"]}).localized_object_annotations
    assert "Cup" in [o.name for o in cup]


def test_object_localization_with_objects_switched_off(launch: Launch, photos: dict[str, bytes]) -> None:
    """An operator who leaves `objects` out of FEEDLENS_ANALYZERS: OBJECT_LOCALIZATION is that image's
    UNIMPLEMENTED error, and the request's other features are still answered."""
    labels_only = launch("gcv-labels-only", {"FEEDLENS_ANALYZERS": "labels"})
    client = client_for(labels_only, labels_only.key("team-a", "read"))
    features = [{"type_": Type.OBJECT_LOCALIZATION}, {"type_": Type.LABEL_DETECTION}]
    (response,) = client.batch_annotate_images(
        requests=[{"image": {"content": photos["chelsea"]}, "features": features}]
    ).responses
    assert response.error.code == 12 and "OBJECT_LOCALIZATION" in response.error.message
    assert "switched off" in response.error.message and not response.localized_object_annotations
    assert "Cat" in [label.description for label in response.label_annotations]


def test_image_properties_finds_the_two_colours(client: vision.ImageAnnotatorClient) -> None:
    pixels = np.zeros((200, 400, 3), dtype=np.uint8)
    pixels[:, :200] = (220, 30, 30)
    pixels[:, 200:] = (30, 30, 220)
    response = client.image_properties(image={"content": encode(Image.fromarray(pixels), "PNG")})
    colours = response.image_properties_annotation.dominant_colors.colors
    top = sorted(colours, key=lambda c: -c.pixel_fraction)[:2]
    assert sum(c.pixel_fraction for c in top) > 0.95
    rgb = sorted((round(c.color.red), round(c.color.green), round(c.color.blue)) for c in top)
    assert rgb[0][2] > 180 and rgb[0][0] < 80  # blue
    assert rgb[1][0] > 180 and rgb[1][2] < 80  # red


def test_crop_hints_keep_the_face(client: vision.ImageAnnotatorClient, photos: dict[str, bytes]) -> None:
    response = client.crop_hints(
        image={"content": photos["astronaut"]},
        image_context={"crop_hints_params": {"aspect_ratios": [1.0, 0.5]}},
    )
    square, tall = response.crop_hints_annotation.crop_hints
    xs, ys = xs_ys(square.bounding_poly)
    assert (max(xs) - min(xs), max(ys) - min(ys)) == (512, 512)
    xs, ys = xs_ys(tall.bounding_poly)
    assert (max(xs) - min(xs), max(ys) - min(ys)) == (256, 512)
    assert min(xs) < 175 and max(xs) > 275  # the face (x 173..274) is inside the half-width crop
    assert tall.importance_fraction > 0.5 and tall.confidence > 0.3


# ---- batches and per-image errors --------------------------------------------------------------------------


def test_batch_with_one_corrupt_image(client: vision.ImageAnnotatorClient, photos: dict[str, bytes]) -> None:
    truncated = photos["chelsea"][: len(photos["chelsea"]) // 3]
    features = [{"type_": Type.LABEL_DETECTION}, {"type_": Type.FACE_DETECTION}]
    images = [photos["chelsea"], truncated, photos["astronaut"], b"\x89PNG\r\n\x1a\nthen nothing"]
    response = client.batch_annotate_images(
        requests=[{"image": {"content": data}, "features": features} for data in images]
    )
    cat, bad, astronaut, garbage = response.responses
    assert "Cat" in [label.description for label in cat.label_annotations] and not cat.error.message
    assert len(astronaut.face_annotations) == 1 and not astronaut.error.message
    for failed in (bad, garbage):
        assert failed.error.code == 3 and "Bad image data" in failed.error.message
        assert not failed.label_annotations


def test_unsupported_features_are_per_image_errors(
    client: vision.ImageAnnotatorClient, photos: dict[str, bytes]
) -> None:
    unsupported = [
        Type.WEB_DETECTION,
        Type.LANDMARK_DETECTION,
        Type.PRODUCT_SEARCH,
    ]
    requests = [{"image": {"content": photos["coffee"]}, "features": [{"type_": t}]} for t in unsupported]
    mixed = [{"type_": Type.WEB_DETECTION}, {"type_": Type.LABEL_DETECTION}]
    requests.append({"image": {"content": photos["coffee"]}, "features": mixed})
    *alone, both = client.batch_annotate_images(requests=requests).responses
    for kind, response in zip(unsupported, alone, strict=True):
        assert response.error.code == 12 and kind.name in response.error.message
    assert both.error.code == 12 and "Espresso" in [label.description for label in both.label_annotations]


def test_oversized_and_wrong_format_images(
    client: vision.ImageAnnotatorClient, photos: dict[str, bytes]
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), dtype=np.uint8)
    huge = encode(Image.fromarray(noise), "PNG")
    assert MAX_IMAGE_BYTES < len(huge) < MAX_BODY_BYTES * 3 // 4  # over the image cap, under the body cap
    images = [huge, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", b"<svg xmlns='http://www.w3.org/2000/svg'/>"]
    images.append(photos["chelsea"])
    features = [{"type_": Type.LABEL_DETECTION}]
    responses = client.batch_annotate_images(
        requests=[{"image": {"content": data}, "features": features} for data in images]
    ).responses
    assert responses[0].error.code == 3 and "too_large" in responses[0].error.message
    for wrong in responses[1:3]:
        assert wrong.error.code == 3 and "unsupported_format" in wrong.error.message
    assert responses[3].label_annotations and not responses[3].error.message


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}  # noqa: RUF012 - set per server below

    def do_GET(self) -> None:
        data = self.files.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files(photos: dict[str, bytes]) -> Iterator[str]:
    handler = type("Handler", (_Files,), {"files": {"/cat.png": photos["chelsea"]}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_image_uris_go_through_the_safe_fetcher(client: vision.ImageAnnotatorClient, files: str) -> None:
    sources = [f"{files}/cat.png", f"{files}/missing.png", "http://10.0.0.1/private.png", "gs://bucket/a.png"]
    requests = [
        {"image": {"source": {"image_uri": uri}}, "features": [{"type_": Type.LABEL_DETECTION}]}
        for uri in sources
    ]
    fetched, missing, private, gcs = client.batch_annotate_images(requests=requests).responses
    assert "Cat" in [label.description for label in fetched.label_annotations]
    assert missing.error.code == 14 and "fetch_http_status" in missing.error.message
    assert private.error.code == 7 and "address_refused" in private.error.message
    assert gcs.error.code == 12 and "gs://" in gcs.error.message


def test_image_uris_refused_when_fetching_is_off(
    shared_server: Server, team: Team, photos: dict[str, bytes]
) -> None:
    # the e2e shared server: fetching off (SHARED_SETTINGS); the module's own has it on
    response = post(
        shared_server,
        {
            "requests": [
                {
                    "image": {"source": {"imageUri": "https://example.com/a.png"}},
                    "features": [{"type": 4}],
                },
                {"image": {"content": b64(photos["coffee"])}, "features": [{"type": 6}]},
            ]
        },
        params={"key": shared_server.key(team.workspace("w"), "read")},
    )
    assert response.status_code == 200, response.text
    refused, fine = response.json()["responses"]
    assert refused["error"]["code"] == 7 and "fetch_disabled" in refused["error"]["message"]
    assert fine["safeSearchAnnotation"]["adult"] in ("VERY_UNLIKELY", "UNLIKELY")


# ---- auth ----------------------------------------------------------------------------------------------


def test_wrong_or_missing_key_is_refused(server: Server, photos: dict[str, bytes]) -> None:
    # Over REST the client picks its exception by HTTP status: 401 Unauthorized, 403 Forbidden (their
    # gRPC-named subclasses Unauthenticated and PermissionDenied are raised by the gRPC transport).
    image = {"content": photos["coffee"]}
    with pytest.raises(exceptions.Unauthorized, match="API key not valid") as wrong:
        client_for(server, "fl_not-a-real-key").label_detection(image=image)
    assert wrong.value.reason == "API_KEY_INVALID"
    anonymous = vision.ImageAnnotatorClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": server.url}
    )
    with pytest.raises(exceptions.Forbidden) as missing:
        anonymous.label_detection(image=image)
    assert missing.value.reason == "API_KEY_MISSING"


def test_key_as_query_parameter_or_bearer(server: Server, key: str, photos: dict[str, bytes]) -> None:
    body = {
        "requests": [
            {"image": {"content": b64(photos["coffee"])}, "features": [{"type": "SAFE_SEARCH_DETECTION"}]}
        ]
    }
    for kwargs in ({"params": {"key": key}}, {"headers": {"Authorization": f"Bearer {key}"}}):
        response = post(server, body, **kwargs)
        assert response.status_code == 200 and "safeSearchAnnotation" in response.json()["responses"][0]


def test_rate_limit_is_resource_exhausted(server: Server) -> None:
    own = server.key("team-c", "read")  # its own bucket: the module's key keeps its tokens
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(BURST * 5):
            response = http.post(ANNOTATE, params={"key": own}, content=b"{}")
            if response.status_code == 429:
                break
            assert response.status_code == 400  # not a 401: the key works, the body is empty
    assert response.status_code == 429
    assert (
        response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        and int(response.headers["Retry-After"]) >= 1
    )


# ---- wire details, raw HTTP ------------------------------------------------------------------------------


def test_enums_as_names_by_default_and_as_numbers_when_asked(
    server: Server, key: str, photos: dict[str, bytes]
) -> None:
    body = {
        "requests": [
            {
                "image": {"content": b64(photos["astronaut"])},
                "features": [{"type": "FACE_DETECTION"}, {"type": 6}],
            }
        ]
    }
    named = post(server, body, params={"key": key}).json()["responses"][0]
    numbered = post(server, body, params={"key": key, "$alt": "json;enum-encoding=int"}).json()["responses"][
        0
    ]
    assert named["faceAnnotations"][0]["joyLikelihood"] in ("LIKELY", "VERY_LIKELY")
    assert named["safeSearchAnnotation"]["spoof"] == "UNKNOWN"
    assert numbered["faceAnnotations"][0]["joyLikelihood"] in (4, 5)
    assert numbered["safeSearchAnnotation"]["spoof"] == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "Invalid JSON"),
        (b'{"requests": []}', "requests"),
        (b'{"nothing": 1}', "requests"),
        (b'"just a string"', "object"),
    ],
)
def test_bad_request_bodies_are_googles_400(server: Server, key: str, content: bytes, fragment: str) -> None:
    response = httpx.post(server.url + ANNOTATE, params={"key": key}, content=content, timeout=30)
    assert response.status_code == 400 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400 and fragment in error["message"]


def test_more_than_16_images_is_a_400(server: Server, key: str) -> None:
    item = {"image": {"content": "AAAA"}, "features": [{"type": 4}]}
    response = post(server, {"requests": [item] * 17}, params={"key": key})
    assert response.status_code == 400 and "Too many images" in response.json()["error"]["message"]


def test_a_bad_item_does_not_fail_the_request(server: Server, key: str, photos: dict[str, bytes]) -> None:
    good = {"image": {"content": b64(photos["coffee"])}, "features": [{"type": "SAFE_SEARCH_DETECTION"}]}
    bad_base64 = {"image": {"content": "!!!"}, "features": [{"type": 6}]}
    unknown = {"image": {"content": b64(photos["coffee"])}, "features": [{"type": "NOT_A_FEATURE"}]}
    response = post(server, {"requests": [bad_base64, good, unknown]}, params={"key": key})
    assert response.status_code == 200
    first, second, third = response.json()["responses"]
    assert first["error"]["code"] == 3 and "Base64" in first["error"]["message"]
    assert "safeSearchAnnotation" in second and "error" not in second
    assert third["error"]["code"] == 3 and "NOT_A_FEATURE" in third["error"]["message"]


def test_app_wide_refusals_come_in_googles_shape(server: Server, key: str) -> None:
    content = b'{"requests": [{"image": {"content": "' + b"A" * MAX_BODY_BYTES + b'"}}]}'
    response = httpx.post(server.url + ANNOTATE, params={"key": key}, content=content, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert (
        response.json()["error"]["message"]
        == f"Request payload size exceeds the limit: {MAX_BODY_BYTES} bytes."
    )
    nul = httpx.post(f"{server.url}{ANNOTATE}?key={key}%00", content=b"{}", timeout=30)
    assert nul.status_code == 400 and nul.json()["error"]["status"] == "INVALID_ARGUMENT"
    wrong_method = httpx.get(server.url + ANNOTATE, params={"key": key}, timeout=30)
    assert wrong_method.status_code == 404 and wrong_method.json()["error"]["status"] == "NOT_FOUND"
    other = httpx.post(server.url + "/v1/files:annotate", params={"key": key}, json={}, timeout=30)
    assert other.status_code == 404 and other.json()["error"]["status"] == "NOT_FOUND"


def test_logo_detection_uses_the_workspaces_brands(
    client: vision.ImageAnnotatorClient, server: Server, sample_dir: Path, photos: dict[str, bytes]
) -> None:
    """A brand registered through feedlens's own API is what LOGO_DETECTION finds, with its outline."""
    writer = server.key("team-a", "write")
    registered = httpx.post(
        f"{server.url}/v1/brands",
        headers={"Authorization": f"Bearer {writer}"},
        data={"name": "Zorblax", "aliases": ["Zorblax Cola"]},
        files=[("logos", ("zorblax.png", png(logo()), "image/png"))],
        timeout=120,
    )
    assert registered.status_code == 200, registered.text
    pasted = client.logo_detection(image={"content": composite(sample_dir / "chelsea.png", logo())})
    (found,) = pasted.logo_annotations
    assert found.description == "Zorblax" and found.score > 0.5 and found.mid == "/feedlens/brand/Zorblax"
    xs = [v.x for v in found.bounding_poly.vertices]
    assert 0.1 * 451 < min(xs) < max(xs) < 0.75 * 451  # where the logo was pasted on the 451 px photo
    assert not client.logo_detection(image={"content": photos["coffee"]}).logo_annotations
    # another workspace has no such brand
    other = client_for(server, server.key("team-b", "read"))
    assert not other.logo_detection(
        image={"content": composite(sample_dir / "chelsea.png", logo())}
    ).logo_annotations
