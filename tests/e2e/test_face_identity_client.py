"""The real boto3 Rekognition client against a real feedlens server: CompareFaces and the collection
operations on the sample portraits (the same person under a mirror and a crop matched, different people
not), AWS's errors for bad input, the opt-in switch, key scopes and workspace isolation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageOps

from feedlens.services.factory import Services
from tests.conftest import encode
from tests.e2e.server import Server
from tests.support.api import auth
from tests.support.cli import Cli
from tests.support.face_identity import rekognition_client, switch_on

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def clients(server: Server, services: Services) -> dict[str, Any]:
    """Write and read clients of two workspaces with identity on, and one of a workspace left off."""
    made = {}
    for workspace, scope in (
        ("faces-a", "write"),
        ("faces-a", "read"),
        ("faces-b", "write"),
        ("faces-off", "write"),
    ):
        made[f"{workspace}/{scope}"] = rekognition_client(server, server.key(workspace, scope))
    switch_on(server, services, "faces-a")
    switch_on(server, services, "faces-b")
    return made


@pytest.fixture(scope="module")
def photos(sample_dir: Path) -> dict[str, bytes]:
    astronaut = Image.open(sample_dir / "astronaut.png").convert("RGB")
    hopper = Image.open(sample_dir / "grace_hopper.jpg").convert("RGB")
    w, h = astronaut.size
    pair = Image.new("RGB", (w + hopper.width, max(h, hopper.height)), "white")
    pair.paste(astronaut, (0, 0))
    pair.paste(hopper, (w, 0))
    return {
        "astronaut": encode(astronaut, "PNG"),
        "astronaut mirrored and cropped": encode(
            ImageOps.mirror(astronaut).crop((40, 20, w, h - 40)), "JPEG"
        ),
        "hopper": encode(hopper, "JPEG"),
        "pair": encode(pair, "JPEG"),
        "coffee": (sample_dir / "coffee.png").read_bytes(),
    }


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_identity_off_is_refused_naming_the_setting(
    clients: dict[str, Any], photos: dict[str, bytes]
) -> None:
    off = clients["faces-off/write"]
    calls = (
        lambda: off.compare_faces(
            SourceImage={"Bytes": photos["astronaut"]}, TargetImage={"Bytes": photos["hopper"]}
        ),
        lambda: off.create_collection(CollectionId="people"),
        off.list_collections,
    )
    for call in calls:
        with pytest.raises(ClientError) as refused:
            call()
        assert error_code(refused) == "AccessDeniedException"
        assert "feedlens faces identity on" in refused.value.response["Error"]["Message"]


def test_compare_faces(clients: dict[str, Any], photos: dict[str, bytes]) -> None:
    client = clients["faces-a/read"]

    def compare(source: str, target: str, **extra: Any) -> Any:
        return client.compare_faces(
            SourceImage={"Bytes": photos[source]}, TargetImage={"Bytes": photos[target]}, **extra
        )

    same = compare("astronaut", "astronaut mirrored and cropped")
    (match,) = same["FaceMatches"]
    assert match["Similarity"] >= 80 and same["UnmatchedFaces"] == []
    assert 0 < same["SourceImageFace"]["BoundingBox"]["Width"] < 0.5
    different = compare("astronaut", "hopper")
    assert different["FaceMatches"] == [] and len(different["UnmatchedFaces"]) == 1
    group = compare("hopper", "pair")
    (found,) = group["FaceMatches"]
    assert found["Face"]["BoundingBox"]["Left"] > 0.4 and len(group["UnmatchedFaces"]) == 1  # the right one
    everyone = compare("hopper", "pair", SimilarityThreshold=0)
    assert len(everyone["FaceMatches"]) == 2 and everyone["UnmatchedFaces"] == []
    assert compare("astronaut", "coffee")["FaceMatches"] == []
    with pytest.raises(ClientError) as no_face:
        compare("coffee", "astronaut")
    assert error_code(no_face) == "InvalidParameterException"
    assert "no faces" in no_face.value.response["Error"]["Message"]


def test_collections_from_create_to_delete(clients: dict[str, Any], photos: dict[str, bytes]) -> None:
    client, reader = clients["faces-a/write"], clients["faces-a/read"]
    created = client.create_collection(CollectionId="team.people-1")
    assert created["StatusCode"] == 200 and created["CollectionArn"].endswith("collection/team.people-1")
    with pytest.raises(ClientError) as twice:
        client.create_collection(CollectionId="team.people-1")
    assert error_code(twice) == "ResourceAlreadyExistsException"
    assert "team.people-1" in client.list_collections()["CollectionIds"]

    records = {}
    for name in ("astronaut", "hopper"):
        indexed = client.index_faces(
            CollectionId="team.people-1",
            Image={"Bytes": photos[name]},
            ExternalImageId=name,
            MaxFaces=10,
            DetectionAttributes=["ALL"],
        )
        (records[name],) = indexed["FaceRecords"]
        assert (
            UUID.fullmatch(records[name]["Face"]["FaceId"])
            and records[name]["Face"]["ExternalImageId"] == name
        )
    two = client.index_faces(CollectionId="team.people-1", Image={"Bytes": photos["pair"]}, MaxFaces=1)
    assert len(two["FaceRecords"]) == 1 and two["UnindexedFaces"][0]["Reasons"] == ["EXCEEDS_MAX_FACES"]
    assert (
        client.index_faces(CollectionId="team.people-1", Image={"Bytes": photos["coffee"]})["FaceRecords"]
        == []
    )
    assert reader.describe_collection(CollectionId="team.people-1")["FaceCount"] == 3
    listed = reader.list_faces(CollectionId="team.people-1", MaxResults=2)
    assert len(listed["Faces"]) == 2 and "NextToken" in listed
    rest = reader.list_faces(CollectionId="team.people-1", NextToken=listed["NextToken"])["Faces"]
    assert len(listed["Faces"] + rest) == 3
    # boto3's paginators (NextToken / MaxResults) walk the same faces and collections
    pages = reader.get_paginator("list_faces").paginate(
        CollectionId="team.people-1", PaginationConfig={"PageSize": 1}
    )
    assert sorted(f["FaceId"] for page in pages for f in page["Faces"]) == sorted(
        f["FaceId"] for f in listed["Faces"] + rest
    )
    walked = [
        c for page in reader.get_paginator("list_collections").paginate() for c in page["CollectionIds"]
    ]
    assert "team.people-1" in walked

    by_image = reader.search_faces_by_image(
        CollectionId="team.people-1", Image={"Bytes": photos["astronaut mirrored and cropped"]}
    )
    assert [m["Face"]["ExternalImageId"] for m in by_image["FaceMatches"]] == ["astronaut"]
    assert by_image["FaceMatches"][0]["Similarity"] >= 80
    # MaxFaces=1 kept the pair photo's largest face: Grace Hopper's (on the right), found from hers
    kept = two["FaceRecords"][0]["Face"]
    assert kept["BoundingBox"]["Left"] > 0.4
    hopper_id, astronaut_id = records["hopper"]["Face"]["FaceId"], records["astronaut"]["Face"]["FaceId"]
    by_id = reader.search_faces(CollectionId="team.people-1", FaceId=hopper_id)
    (twin,) = by_id["FaceMatches"]
    assert by_id["SearchedFaceId"] == hopper_id and twin["Face"]["ImageId"] == kept["ImageId"]
    assert twin["Similarity"] >= 80
    assert reader.search_faces(CollectionId="team.people-1", FaceId=astronaut_id)["FaceMatches"] == []

    deleted = client.delete_faces(CollectionId="team.people-1", FaceIds=[astronaut_id])
    assert deleted["DeletedFaces"] == [astronaut_id]
    again = client.delete_faces(CollectionId="team.people-1", FaceIds=[astronaut_id])
    assert again["DeletedFaces"] == [] and again["UnsuccessfulFaceDeletions"][0]["Reasons"] == [
        "FACE_NOT_FOUND"
    ]
    assert reader.describe_collection(CollectionId="team.people-1")["FaceCount"] == 2
    assert client.delete_collection(CollectionId="team.people-1")["StatusCode"] == 200
    with pytest.raises(ClientError) as gone:
        reader.describe_collection(CollectionId="team.people-1")
    assert error_code(gone) == "ResourceNotFoundException"


def test_bad_input_scopes_and_other_workspaces(clients: dict[str, Any], photos: dict[str, bytes]) -> None:
    client, reader, other = clients["faces-a/write"], clients["faces-a/read"], clients["faces-b/write"]
    client.create_collection(CollectionId="private")
    astronaut = {"Bytes": photos["astronaut"]}
    cases = [
        (lambda: client.describe_collection(CollectionId="nowhere"), "ResourceNotFoundException"),
        (lambda: client.index_faces(CollectionId="nowhere", Image=astronaut), "ResourceNotFoundException"),
        (
            lambda: client.search_faces(CollectionId="private", FaceId="not-a-face-id"),
            "InvalidParameterException",
        ),
        (
            lambda: client.search_faces(
                CollectionId="private", FaceId="00000000-0000-0000-0000-000000000000"
            ),
            "ResourceNotFoundException",
        ),
        (
            lambda: client.search_faces_by_image(CollectionId="private", Image={"Bytes": photos["coffee"]}),
            "InvalidParameterException",
        ),
        (lambda: client.create_collection(CollectionId="bad name!"), "InvalidParameterException"),
        (lambda: reader.create_collection(CollectionId="mine"), "AccessDeniedException"),  # a read key
        (lambda: reader.index_faces(CollectionId="private", Image=astronaut), "AccessDeniedException"),
        (lambda: other.describe_collection(CollectionId="private"), "ResourceNotFoundException"),
        (lambda: other.index_faces(CollectionId="private", Image=astronaut), "ResourceNotFoundException"),
        (lambda: other.delete_collection(CollectionId="private"), "ResourceNotFoundException"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as refused:
            call()
        assert error_code(refused) == code
    assert "private" not in other.list_collections()["CollectionIds"]
    assert client.describe_collection(CollectionId="private")["FaceCount"] == 0


def test_the_cli_switches_identity_on_and_off_erasing(feedlens: Cli, cli_services: Services) -> None:
    assert feedlens("workspaces", "create", "cli-team").code == 0
    assert (
        feedlens("faces", "identity", "status", "-w", "cli-team", "--json").json()["face_identity"] is False
    )
    assert feedlens("faces", "identity", "on", "-w", "cli-team").code == 0
    assert feedlens("faces", "identity", "status", "-w", "cli-team", "--json").json()["face_identity"] is True
    service = cli_services.face_identity
    ws = cli_services.access.workspace_id("cli-team")
    service.create_collection(ws, "people")
    service.index(
        ws, "people", [({"Width": 0.1, "Height": 0.1, "Left": 0.0, "Top": 0.0}, 90.0, np.ones(1024))], None
    )
    refused = feedlens("faces", "identity", "off", "-w", "cli-team")
    assert refused.code != 0 and "--yes" in refused.stderr + refused.stdout
    off = feedlens("faces", "identity", "off", "-w", "cli-team", "--yes")
    assert off.code == 0 and "1 face descriptors erased" in off.stdout
    assert not service.enabled(ws) and service.list_collections(ws, "", 10) == ([], False)


def test_people_over_http(server: Server, services: Services, photos: dict[str, bytes]) -> None:
    """Stored photos grouped into people through the HTTP API; refused (403) where identity is off."""
    write = server.key("people-a", "write")
    off = server.key("people-off", "write")
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for name in ("astronaut", "astronaut mirrored and cropped", "hopper", "coffee"):
            stored = http.post(
                "/v1/images",
                headers=auth(write),
                files={"file": (f"{name}.jpg", photos[name])},
                data={"analyzers": "faces"},
            )
            assert stored.status_code == 201, stored.text
        refused = http.post("/v1/people/scan", headers=auth(off))
        assert refused.status_code == 403 and refused.json()["code"] == "face_identity_off"
        assert http.post("/v1/people/scan", headers=auth(write)).status_code == 403
        switch_on(server, services, "people-a")
        scanned = http.post("/v1/people/scan", headers=auth(write)).json()
        assert scanned == {"images": 4, "faces": 3, "people": 2}
        people = http.get("/v1/people", headers=auth(write)).json()["people"]
        assert [p["faces"] for p in people] == [2, 1] and people[0]["cover"]["image_id"]
        first = people[0]["id"]
        assert (
            http.patch(f"/v1/people/{first}", headers=auth(write), json={"name": "Eileen"}).status_code == 204
        )
        assert http.get("/v1/people", headers=auth(write)).json()["people"][0]["name"] == "Eileen"
        images = http.get(f"/v1/people/{first}/images", headers=auth(write)).json()["images"]
        assert len(images) == 2
        assert http.delete(f"/v1/people/{first}", headers=auth(write)).status_code == 204
        assert http.get(f"/v1/people/{first}/images", headers=auth(write)).status_code == 404
        assert [p["faces"] for p in http.get("/v1/people", headers=auth(write)).json()["people"]] == [1]
