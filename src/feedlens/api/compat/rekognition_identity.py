"""Rekognition's face identity operations (CompareFaces and the collection operations) on feedlens's face
identity service: opt-in per workspace (docs/faces.md), so a workspace that has not switched it on gets
AccessDeniedException before anything about a face is computed. Shapes and errors follow AWS's API
reference; see docs/compat.md for what is filled.

Similarity is feedlens's calibrated-by-hand mapping of faceres cosine to 0..100
(analyzers/face_identity.py: 80, AWS's default threshold, is cosine 0.62).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from feedlens.analyzers.face_identity import DECODE_SIDE, SIMILARITY_THRESHOLD, cosine_for, similarity
from feedlens.api.compat import rekognition as rk
from feedlens.api.compat import rekognition_requests as rq
from feedlens.api.compat.rekognition_faces import detect_faces
from feedlens.api.state import AppState
from feedlens.core.access import Principal
from feedlens.core.access import Scope as KeyScope
from feedlens.core.results.base import required_result
from feedlens.core.results.faces import Face, FacesResult
from feedlens.services.faces.identity import FaceIdentityService, IdentityError, Match, Refusal, StoredFace

OPERATIONS = (
    "CompareFaces", "CreateCollection", "DescribeCollection", "ListCollections", "DeleteCollection",
    "IndexFaces", "ListFaces", "SearchFaces", "SearchFacesByImage", "DeleteFaces",
)  # fmt: skip
WRITES = ("CreateCollection", "DeleteCollection", "IndexFaces", "DeleteFaces")  # need a write-scope key
COLLECTION_ID = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")
EXTERNAL_ID = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")
FACE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_COMPARED = 100  # CompareFaces compares with the 100 largest target faces
MAX_LIST = 4096
NO_FACE = "There are no faces in the image. Should be at least 1."
REFUSALS = {
    Refusal.DISABLED: "AccessDeniedException",
    Refusal.NOT_FOUND: "ResourceNotFoundException",
    Refusal.EXISTS: "ResourceAlreadyExistsException",
    Refusal.INVALID: "InvalidParameterException",
}
QUALITY_FILTERS = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")


async def handle(
    operation: str, params: Mapping[str, Any], state: AppState, who: Principal
) -> dict[str, Any]:
    """Answer one face identity operation for `who`'s workspace, or raise rq.RekognitionError."""
    if operation in WRITES and not who.scope.allows(KeyScope.WRITE):
        raise rq.RekognitionError("AccessDeniedException", f"{operation} needs a key with the write scope")
    service = state.services.face_identity
    try:
        await run_in_threadpool(service.require, who.workspace_id, who.workspace)
        if operation == "CompareFaces":
            return await compare_faces(params, state, who)
        if operation in ("IndexFaces", "SearchFacesByImage"):
            return await (index_faces if operation == "IndexFaces" else search_by_image)(params, state, who)
        return await run_in_threadpool(_collection_operation, operation, params, service, who)
    except IdentityError as exc:
        raise rq.RekognitionError(REFUSALS[exc.refusal], exc.message) from None


# -- parameters -----------------------------------------------------------------------------------------
def _string(params: Mapping[str, Any], name: str, pattern: re.Pattern[str], required: bool = True) -> str:
    value = params.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise rq.invalid(f"{name} must match {pattern.pattern}, got {str(value)[:100]!r}")
    return value


def _token(params: Mapping[str, Any]) -> str:
    value = params.get("NextToken", "")
    if not isinstance(value, str) or len(value) > 255:
        raise rq.invalid("NextToken must be a string of at most 255 characters")
    return value


def _quality_filter(params: Mapping[str, Any]) -> None:
    """Accepted for compatibility; every verified face is used (faces already pass Face Mesh checks)."""
    if params.get("QualityFilter", "NONE") not in QUALITY_FILTERS:
        raise rq.invalid(f"QualityFilter must be one of {', '.join(QUALITY_FILTERS)}")


def _face_ids(params: Mapping[str, Any], name: str, required: bool) -> list[str]:
    value = params.get(name, [] if not required else None)
    if not isinstance(value, list) or (required and not value) or len(value) > MAX_LIST:
        raise rq.invalid(f"{name} must be a list of 1 to {MAX_LIST} face ids")
    bad = [v for v in value if not isinstance(v, str) or not FACE_ID.fullmatch(v)]
    if bad:
        raise rq.invalid(f"{name}: {str(bad[0])[:100]!r} is not a face id")
    return list(value)


# -- shapes ---------------------------------------------------------------------------------------------
def _box(face: Face) -> dict[str, float]:
    return rk.bounding_box(face.box)


def face_detail(face: Face, attributes: Collection[str]) -> dict[str, Any]:
    """A face as DetectFaces describes it (the same mapper, so IndexFaces' FaceDetail matches it)."""
    detail: dict[str, Any] = detect_faces(FacesResult.of([face]), attributes)["FaceDetails"][0]
    return detail


def stored_face(face: StoredFace, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FaceId": face.face_id,
        "BoundingBox": face.box,
        "ImageId": face.image_ref,
        "Confidence": face.confidence,
        "IndexFacesModelVersion": version,
    }
    if face.external_image_id is not None:
        out["ExternalImageId"] = face.external_image_id
    return out


def matches(found: Sequence[Match], version: str) -> list[dict[str, Any]]:
    return [
        {"Similarity": round(float(similarity(m.cosine)), 4), "Face": stored_face(m.face, version)}
        for m in found
    ]


def largest_first(faces: Sequence[Face]) -> list[int]:
    """Indices of `faces` by decreasing box area (AWS keeps and compares the largest faces)."""
    return sorted(range(len(faces)), key=lambda k: -faces[k].box.area)


# -- image operations -----------------------------------------------------------------------------------
async def faces_of(
    state: AppState, who: Principal, image: bytes, most: int | None
) -> tuple[list[Face], np.ndarray]:
    """The verified faces of an image, largest first (the `most` largest), with their descriptors."""
    service = state.services.face_identity

    def work() -> tuple[list[Face], np.ndarray]:
        report = state.services.pipeline(("faces",)).analyze_one(image, "rekognition")
        if not report.ok:
            error = report.error or {}
            raise rq.image_error(error.get("code", ""), error.get("message", "the image could not be read"))
        result = required_result(report.results, "faces", FacesResult)
        chosen = [result.faces[k] for k in largest_first(result.faces)][:most]
        if not chosen:
            return [], np.zeros((0, 0), dtype=np.float32)
        decoded = state.services.decoder.decode(image, min_side=DECODE_SIDE).image
        return chosen, service.descriptors(who.workspace_id, who.workspace, decoded, chosen)

    found = await state.gate.run(work)
    state.metrics.images.inc()
    return found


async def compare_faces(params: Mapping[str, Any], state: AppState, who: Principal) -> dict[str, Any]:
    threshold = rq.number(params, "SimilarityThreshold", SIMILARITY_THRESHOLD, 0.0, 100.0)
    _quality_filter(params)
    source = rq.read_image({"Image": params.get("SourceImage")}, state.services.decoder.check_header)
    target = rq.read_image({"Image": params.get("TargetImage")}, state.services.decoder.check_header)
    source_faces, source_vectors = await faces_of(state, who, source, 1)
    if not source_faces:
        raise rq.invalid(NO_FACE)
    target_faces, target_vectors = await faces_of(state, who, target, MAX_COMPARED)
    cosines = target_vectors @ source_vectors[0] if target_faces else np.zeros(0)
    found: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    for face, cosine in zip(target_faces, cosines, strict=True):
        score = float(similarity(float(cosine)))
        compared = _compared(face)
        if score >= threshold:
            found.append({"Similarity": round(score, 4), "Face": compared})
        else:
            unmatched.append(compared)
    found.sort(key=lambda m: -float(m["Similarity"]))
    return {
        "SourceImageFace": {
            "BoundingBox": _box(source_faces[0]),
            "Confidence": rk.percent(source_faces[0].confidence),
        },
        "FaceMatches": found,
        "UnmatchedFaces": unmatched,
    }


def _compared(face: Face) -> dict[str, Any]:
    """A ComparedFace: DetectFaces' detail limited to the fields CompareFaces' shape has."""
    keys = ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality", "Emotions", "Smile")
    return {k: v for k, v in face_detail(face, {"ALL"}).items() if k in keys}


async def index_faces(params: Mapping[str, Any], state: AppState, who: Principal) -> dict[str, Any]:
    service = state.services.face_identity
    name = _string(params, "CollectionId", COLLECTION_ID)
    external = _string(params, "ExternalImageId", EXTERNAL_ID, required=False) or None
    most = rq.integer(params, "MaxFaces", None, 1, None)
    _quality_filter(params)
    attributes = rq.face_attributes({"Attributes": params.get("DetectionAttributes", [])})
    await run_in_threadpool(
        service.describe, who.workspace_id, name
    )  # an unknown collection: before the work
    image = rq.read_image(params, state.services.decoder.check_header)
    faces, vectors = await faces_of(state, who, image, None)
    kept = faces[:most] if most is not None else faces
    rows = [(_box(f), rk.percent(f.confidence), vectors[k]) for k, f in enumerate(kept)]
    stored = await run_in_threadpool(service.index, who.workspace_id, name, rows, external)
    return {
        "FaceRecords": [
            {"Face": stored_face(s, service.version), "FaceDetail": face_detail(f, attributes)}
            for s, f in zip(stored, kept, strict=True)
        ],
        "FaceModelVersion": service.version,
        "UnindexedFaces": [
            {"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": face_detail(f, attributes)}
            for f in faces[len(kept) :]
        ],
    }


async def search_by_image(params: Mapping[str, Any], state: AppState, who: Principal) -> dict[str, Any]:
    service = state.services.face_identity
    name = _string(params, "CollectionId", COLLECTION_ID)
    threshold = rq.number(params, "FaceMatchThreshold", SIMILARITY_THRESHOLD, 0.0, 100.0)
    most = rq.integer(params, "MaxFaces", MAX_LIST, 1, MAX_LIST) or MAX_LIST
    _quality_filter(params)
    await run_in_threadpool(service.describe, who.workspace_id, name)
    image = rq.read_image(params, state.services.decoder.check_header)
    faces, vectors = await faces_of(state, who, image, 1)
    if not faces:
        raise rq.invalid(NO_FACE)
    found = await run_in_threadpool(
        service.search, who.workspace_id, name, vectors[0], cosine_for(threshold), most
    )
    return {
        "SearchedFaceBoundingBox": _box(faces[0]),
        "SearchedFaceConfidence": rk.percent(faces[0].confidence),
        "FaceMatches": matches(found, service.version),
        "FaceModelVersion": service.version,
    }


# -- collection operations (no image: run in a thread) ------------------------------------------------
def _collection_operation(
    operation: str, params: Mapping[str, Any], service: FaceIdentityService, who: Principal
) -> dict[str, Any]:
    ws, version = who.workspace_id, service.version
    if operation == "ListCollections":
        limit = rq.integer(params, "MaxResults", MAX_LIST, 0, MAX_LIST) or MAX_LIST
        found, more = service.list_collections(ws, _token(params), limit)
        out: dict[str, Any] = {
            "CollectionIds": [c.name for c in found],
            "FaceModelVersions": [c.model_version for c in found],
        }
        if more:
            out["NextToken"] = found[-1].name
        return out
    name = _string(params, "CollectionId", COLLECTION_ID)
    if operation == "CreateCollection":
        created = service.create_collection(ws, name)
        return {"StatusCode": 200, "CollectionArn": arn(who, name), "FaceModelVersion": created.model_version}
    if operation == "DescribeCollection":
        info = service.describe(ws, name)
        return {
            "FaceCount": info.face_count,
            "FaceModelVersion": info.model_version,
            "CollectionARN": arn(who, name),
            "CreationTimestamp": info.created_at.timestamp(),
            "UserCount": 0,
        }
    if operation == "DeleteCollection":
        service.delete_collection(ws, name)
        return {"StatusCode": 200}
    if operation == "ListFaces":
        limit = rq.integer(params, "MaxResults", 1000, 0, MAX_LIST) or 1000
        faces, more = service.list_faces(ws, name, _token(params), limit, _face_ids(params, "FaceIds", False))
        listed: dict[str, Any] = {
            "Faces": [stored_face(f, version) for f in faces],
            "FaceModelVersion": version,
        }
        if more:
            listed["NextToken"] = faces[-1].face_id
        return listed
    if operation == "SearchFaces":
        face_id = _string(params, "FaceId", FACE_ID)
        threshold = rq.number(params, "FaceMatchThreshold", SIMILARITY_THRESHOLD, 0.0, 100.0)
        most = rq.integer(params, "MaxFaces", MAX_LIST, 1, MAX_LIST) or MAX_LIST
        query = service.vector_of(ws, name, face_id)
        hits = service.search(ws, name, query, cosine_for(threshold), most, skip=face_id)
        return {
            "SearchedFaceId": face_id,
            "FaceMatches": matches(hits, version),
            "FaceModelVersion": version,
        }
    wanted = _face_ids(params, "FaceIds", True)  # DeleteFaces
    deleted = service.delete_faces(ws, name, wanted)
    missing = [f for f in dict.fromkeys(wanted) if f not in deleted]
    return {
        "DeletedFaces": deleted,
        "UnsuccessfulFaceDeletions": [{"FaceId": f, "Reasons": ["FACE_NOT_FOUND"]} for f in missing],
    }


def arn(who: Principal, name: str) -> str:
    """An ARN-shaped name for a collection (no AWS account here: the workspace stands in for it)."""
    return f"aws:rekognition:feedlens:{who.workspace}:collection/{name}"
