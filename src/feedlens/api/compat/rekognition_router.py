"""POST / with `X-Amz-Target: RekognitionService.<Operation>`: AWS Rekognition's JSON 1.1 protocol, so
boto3 and the other AWS SDKs work against feedlens by changing their endpoint.

Requests are signed with AWS Signature V4 by a feedlens key's derived secret (`feedlens keys aws`).
Every answer, errors included, is in Rekognition's shape: errors as `{"__type", "Message"}` JSON, never
problem+json (`RekognitionErrors` rewrites the app-wide middleware's answers on this route).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from feedlens.api.compat import rekognition as rk
from feedlens.api.compat import rekognition_identity as identity
from feedlens.api.compat import rekognition_requests as rq
from feedlens.api.compat import sigv4, wire_schemas
from feedlens.api.compat.rekognition_faces import detect_faces
from feedlens.api.compat.rewrite import ProblemRewriter
from feedlens.api.deps import State
from feedlens.api.state import AppState
from feedlens.core.access import Principal
from feedlens.core.access import Scope as KeyScope
from feedlens.core.errors import FeedlensError, StorageError, UnknownAnalyzerError
from feedlens.core.results.base import AnalyzerResult, optional_result, required_result
from feedlens.core.results.faces import FacesResult
from feedlens.core.results.labels import LabelsResult
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.properties import PropertiesResult
from feedlens.core.results.safety import SafetyResult
from feedlens.core.results.text import TextResult
from feedlens.core.vocabulary import Vocabulary
from feedlens.services.access import AuthError, AuthFailure, authorise
from feedlens.services.inference import ServerBusyError

log = logging.getLogger(__name__)
router = APIRouter(tags=["compat"])
SERVICE = "rekognition"  # the service name in the SigV4 credential scope
ANALYZERS = {  # DetectLabels: labels_analyzers (depends on the request and on what is switched on)
    "DetectModerationLabels": ("safety",),
    "DetectText": ("text",),
    "DetectFaces": ("faces",),
}
INTERNAL = "InternalServerError"
APP_STATE_KEY = "rekognition_tables"


def error_response(error: rq.RekognitionError) -> JSONResponse:
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), "x-amzn-ErrorType": error.code}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(error.body(), status_code=error.status, headers=headers, media_type=rq.CONTENT_TYPE)


REKOGNITION_DOC: dict[str, Any] = {
    "parameters": [
        {"name": "X-Amz-Target", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "Authorization", "in": "header", "required": True, "schema": {"type": "string"}},
    ],
    "requestBody": {"content": {rq.CONTENT_TYPE: {"schema": wire_schemas.REKOGNITION_REQUEST}}},
}


@router.post(
    "/",
    summary="AWS Rekognition JSON 1.1 (X-Amz-Target: RekognitionService.<Operation>)",
    response_class=JSONResponse,
    openapi_extra=REKOGNITION_DOC,
)
async def rekognition(request: Request, state: State) -> Response:
    """DetectLabels, DetectModerationLabels, DetectText and DetectFaces with `Image.Bytes`, plus CompareFaces
    and the face-collection operations where the workspace has face identity on (docs/faces.md); signed
    with AWS SigV4 (access key `feedlens-<key id>`, secret from `feedlens keys aws KEY`); docs/compat.md."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > rq.MAX_BODY_BYTES:
        return error_response(
            rq.RekognitionError("ImageTooLargeException", f"request body over {rq.MAX_BODY_BYTES} bytes")
        )
    body = await request.body()  # outside the try: RequestGuard's own size check must reach it
    try:
        principal = await authenticate(request, state, body)
        return JSONResponse(
            await dispatch(request, state, principal, body),
            headers={"x-amzn-RequestId": str(uuid.uuid4())},
            media_type=rq.CONTENT_TYPE,
        )
    except rq.RekognitionError as exc:
        return error_response(exc)
    except ServerBusyError as exc:
        # Rekognition's ThrottlingException is a server fault (5xx): 503 says "try again" without a 500
        return error_response(
            rq.RekognitionError("ThrottlingException", exc.message, status=503, retry_after=exc.retry_after)
        )
    except UnknownAnalyzerError as exc:  # the operation's analyzer is switched off (FEEDLENS_ANALYZERS)
        return error_response(rq.invalid(exc.message))
    except StorageError as exc:  # the status feedlens's own API answers; the type names the condition
        log.error("rekognition: %s", exc.message)
        return error_response(rq.RekognitionError("InsufficientStorageException", exc.message, status=507))
    except FeedlensError as exc:
        log.warning("rekognition: %s", exc.message)
        return error_response(rq.RekognitionError(INTERNAL, exc.message, status=500))
    except Exception:
        log.exception("rekognition: unexpected error")
        return error_response(
            rq.RekognitionError(INTERNAL, "unexpected server error; it has been logged", 500)
        )


def signed_request(request: Request, body: bytes) -> sigv4.SignedRequest:
    scope = request.scope
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
    return sigv4.SignedRequest(
        method=request.method,
        path=path,
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=body,
    )


async def authenticate(request: Request, state: AppState, body: bytes) -> Principal:
    """The key that signed the request, after its rate limit and scope; Rekognition's errors otherwise
    (AWS's own codes: MissingAuthenticationToken, UnrecognizedClient, InvalidSignature, ...)."""
    signed = signed_request(request, body)
    try:
        auth = sigv4.parse_authorization(signed.header("authorization"))
    except sigv4.SigV4Error as exc:
        raise rq.RekognitionError(exc.code, exc.message) from None
    found = await run_in_threadpool(state.services.access.sigv4_principal, auth.access_key_id)
    if found is None:  # unknown, revoked, or a key made before signing secrets existed
        raise rq.RekognitionError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    principal, secret = found
    try:
        sigv4.verify(signed, auth, secret, datetime.now(UTC), SERVICE)
    except sigv4.SigV4Error as exc:
        raise rq.RekognitionError(exc.code, exc.message) from None
    try:
        return authorise(principal, KeyScope.READ, state.limiter)
    except AuthError as exc:
        raise aws_auth_error(exc) from None


def aws_auth_error(exc: AuthError) -> rq.RekognitionError:
    """An AuthError after a good signature (rate limit, scope) in AWS's words."""
    if exc.failure is AuthFailure.RATE_LIMITED:
        return rq.RekognitionError(
            "ProvisionedThroughputExceededException",
            f"rate limit of this key exceeded; retry in {exc.retry_after} s",
            retry_after=exc.retry_after,
        )
    if exc.failure is AuthFailure.FORBIDDEN:
        return rq.RekognitionError("AccessDeniedException", exc.message)
    return rq.RekognitionError(
        "UnrecognizedClientException", "The security token included in the request is invalid."
    )


async def dispatch(request: Request, state: AppState, principal: Principal, body: bytes) -> dict[str, Any]:
    target = request.headers.get("x-amz-target", "")
    operation = target.removeprefix(rq.TARGET_PREFIX) if target.startswith(rq.TARGET_PREFIX) else ""
    if operation in identity.OPERATIONS:  # CompareFaces, collections: opt-in per workspace (docs/faces.md)
        return await identity.handle(operation, rq.parse_body(body), state, principal)
    if operation == "RecognizeCelebrities":  # a refusal by design, said plainly (docs/faces.md)
        raise rq.RekognitionError(
            "UnknownOperationException",
            "RecognizeCelebrities is not offered: feedlens holds no celebrity data and does not identify "
            "public figures; use a face collection of your own (CompareFaces, SearchFacesByImage)",
        )
    if operation not in rq.OPERATIONS:
        raise rq.RekognitionError(
            "UnknownOperationException",
            f"operation {target[:100]!r} is not supported (feedlens answers {', '.join(rq.OPERATIONS)})",
        )
    params = rq.parse_body(body)
    if operation == "DetectLabels":
        labels_request = rq.LabelsRequest.parse(params)
        image = rq.read_image(params, state.services.decoder.check_header)
        names = labels_analyzers(labels_request, state.services.analyzers)
        results, versions = await analyze(state, names, image)
        tables = await lookup_tables(request, state)
        return rk.detect_labels(
            optional_result(results, "labels", LabelsResult),
            optional_result(results, "properties", PropertiesResult),
            labels_request,
            tables.vocabulary,
            tables.colours,
            state.settings.properties_blur_threshold,
            versions["labels"],
            optional_result(results, "objects", ObjectsResult),
        )
    if operation == "DetectModerationLabels":
        min_confidence = rq.number(params, "MinConfidence", 50.0, 0.0, 100.0)
        if params.get("ProjectVersion"):
            raise rq.RekognitionError(
                "ResourceNotFoundException", "custom moderation adapters (ProjectVersion) do not exist here"
            )
        image = rq.read_image(params, state.services.decoder.check_header)
        results, versions = await analyze(state, ANALYZERS[operation], image)
        safety = required_result(results, "safety", SafetyResult)
        return rk.detect_moderation_labels(safety, min_confidence, versions["safety"])
    if operation == "DetectText":
        text_request = rq.TextRequest.parse(params)
        image = rq.read_image(params, state.services.decoder.check_header)
        results, versions = await analyze(state, ANALYZERS[operation], image)
        return rk.detect_text(required_result(results, "text", TextResult), text_request, versions["text"])
    attributes = rq.face_attributes(params)
    image = rq.read_image(params, state.services.decoder.check_header)
    results, _ = await analyze(state, ANALYZERS[operation], image)
    return detect_faces(required_result(results, "faces", FacesResult), attributes)


def labels_analyzers(request: rq.LabelsRequest, enabled: Collection[str]) -> tuple[str, ...]:
    """What DetectLabels runs: `labels` (which also draws on faces, objects and poses when they are switched
    on: `Services.pipeline` adds them as helpers), `objects` named so that its boxes are reported for the
    Instances, unless the operator switched it off (FEEDLENS_ANALYZERS: then Instances are empty), and
    `properties` for IMAGE_PROPERTIES."""
    names = ["labels"]
    if request.general and "objects" in enabled:
        names.append("objects")
    if request.properties:
        names.append("properties")
    return tuple(names)


async def analyze(
    state: AppState, names: Sequence[str], image: bytes
) -> tuple[dict[str, AnalyzerResult], dict[str, str]]:
    """Typed results by analyzer name and the analyzers' versions, through the inference gate."""
    pipeline = state.services.pipeline(names)
    report = await state.gate.run(lambda: pipeline.analyze_one(image, "rekognition"))
    state.metrics.images.inc()
    if not report.ok:
        error = report.error or {}
        raise rq.image_error(error.get("code", ""), error.get("message", "the image could not be analysed"))
    return report.results, pipeline.versions()


@dataclass(frozen=True)
class Tables:
    vocabulary: Vocabulary  # parents, aliases and categories of labels
    colours: rk.CssColours


async def lookup_tables(request: Request, state: AppState) -> Tables:
    """Built on first use and kept on the app (two racing first requests both build; either is kept)."""
    tables: Tables | None = getattr(request.app.state, APP_STATE_KEY, None)
    if tables is None:
        tables = await run_in_threadpool(build_tables, state)
        setattr(request.app.state, APP_STATE_KEY, tables)
    return tables


def build_tables(state: AppState) -> Tables:
    return Tables(Vocabulary.load(), rk.CssColours())


class RekognitionErrors(ProblemRewriter):
    """ASGI middleware, added outside RequestGuard: on POST / (this API's only route) a problem+json
    answer from the app-wide middleware (body over the size cap, NUL in the URL) is rewritten into
    Rekognition's error shape. Other routes pass through untouched."""

    def owns(self, scope: Scope) -> bool:
        return bool(scope["method"] == "POST" and scope["path"] == "/")

    def convert(self, status: int, body: bytes) -> Response:
        return error_response(from_problem(status, body))


def from_problem(status: int, body: bytes) -> rq.RekognitionError:
    try:
        detail = str(json.loads(body).get("detail", ""))
    except (ValueError, AttributeError):
        detail = ""
    if status == 413:
        return rq.RekognitionError("ImageTooLargeException", detail or "request body too large")
    if status == 429:
        return rq.RekognitionError("ProvisionedThroughputExceededException", detail or "rate limit exceeded")
    if status >= 500:
        return rq.RekognitionError(INTERNAL, detail or "unexpected server error", status=500)
    return rq.RekognitionError("InvalidParameterException", detail or "invalid request")
