"""POST /v1/images:annotate: the Google Cloud Vision REST endpoint, answered by feedlens's analyzers.

Every answer is in Google's shape: request-level problems as `{"error": {code, message, status}}` with
the HTTP status Google uses, image-level ones as that image's `error` inside a 200 `responses` list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from feedlens.analyzers.registry import INTERNAL_ANALYZERS
from feedlens.api.compat import gcv, gcv_annotate, wire_schemas
from feedlens.api.compat.gcv import Code, Failure, FeatureType, GcvError, ImageRequest
from feedlens.api.compat.rewrite import ProblemRewriter
from feedlens.api.deps import bearer_secret
from feedlens.api.state import AppState
from feedlens.core.access import Principal
from feedlens.core.access import Scope as KeyScope
from feedlens.core.errors import ModelStoreError, StorageError
from feedlens.core.results import ImageReport
from feedlens.core.results.text import TextResult
from feedlens.services.access import AuthError, AuthFailure, authorise
from feedlens.services.fetch import FetchError
from feedlens.services.inference import ServerBusyError

log = logging.getLogger(__name__)
router = APIRouter(tags=["compat: Google Cloud Vision"])
# The Vision v1 paths: images:annotate is served, the others get Google's 404 rather than feedlens's.
BRAND_DETECT_SIDE = 1000  # logos are matched at about 1 MP, as for stored images (services/brands)
_PATH = re.compile(r"/v1/(projects/[^/]+/(locations/[^/]+/)?)?(images|files):(annotate|asyncBatchAnnotate)")

DOC: dict[str, Any] = {
    "parameters": [
        {"name": "key", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "$alt", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "content": {"application/json": {"schema": wire_schemas.GCV_REQUEST}},
        "description": "a BatchAnnotateImagesRequest (docs/compat.md)",
    },
}


def google_error(exc: GcvError) -> JSONResponse:
    body = gcv.error_body(exc.status, exc.code, exc.message, exc.reason)
    return JSONResponse(body, exc.status, exc.headers or None)


def _secret(request: Request) -> str | None:
    """The key from `?key=`, `x-goog-api-key` (what the official client sends) or a Bearer token."""
    given = request.query_params.get("key") or request.headers.get("x-goog-api-key")
    return given.strip() if given else bearer_secret(request.headers.get("authorization"))


def google_auth_error(exc: AuthError) -> GcvError:
    """An AuthError in Google's words and statuses."""
    if exc.failure is AuthFailure.MISSING:
        return GcvError(
            403,
            Code.PERMISSION_DENIED,
            "The request is missing a valid API key: send a feedlens key as ?key=, x-goog-api-key or "
            "Authorization: Bearer.",
            "API_KEY_MISSING",
        )
    if exc.failure is AuthFailure.INVALID:
        return GcvError(
            401, Code.UNAUTHENTICATED, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
        )
    if exc.failure is AuthFailure.RATE_LIMITED:
        return GcvError(
            429,
            Code.RESOURCE_EXHAUSTED,
            f"Rate limit exceeded; retry in {exc.retry_after} s.",
            "RATE_LIMIT_EXCEEDED",
            {"Retry-After": str(exc.retry_after)},
        )
    return GcvError(403, Code.PERMISSION_DENIED, exc.message[0].upper() + exc.message[1:] + ".")


async def _authorise(request: Request, state: AppState) -> Principal:
    secret = _secret(request)
    try:
        if not secret:
            raise AuthError(AuthFailure.MISSING, "no API key")
        principal = await run_in_threadpool(state.services.access.authenticate, secret)
        return authorise(principal, KeyScope.READ, state.limiter)
    except AuthError as exc:
        raise google_auth_error(exc) from None


async def _source(state: AppState, item: ImageRequest) -> bytes | Failure:
    if item.failure is not None:
        return item.failure
    if item.content is not None:
        return item.content
    assert item.uri is not None
    try:
        return (await run_in_threadpool(state.services.fetcher.fetch, item.uri)).data
    except FetchError as exc:
        return gcv.fetch_failure(exc.code, exc.message)


def _analyse(
    state: AppState, groups: dict[tuple[str, ...], dict[int, bytes]], logos: dict[int, bytes], workspace: int
) -> dict[int, ImageReport]:
    """On an inference thread: one pipeline per distinct analyzer set, each over its images in one batch;
    then the workspace's brands in the images that asked for LOGO_DETECTION."""
    reports: dict[int, ImageReport] = {}
    for names, images in groups.items():
        done = state.services.pipeline(names).analyze_sources([str(i) for i in images], list(images.values()))
        reports.update(zip(images, done, strict=True))
    for i, data in logos.items():
        report = reports.get(i)
        if report is None or not report.ok:
            continue
        pixels = state.services.decoder.decode(data, min_side=BRAND_DETECT_SIDE).image
        text = report.results.get("text")
        full_text = text.full_text if isinstance(text, TextResult) else ""
        report.results["brands"] = state.services.brands.detect_image(workspace, pixels, full_text)
    return reports


def _response(item: ImageRequest, report: ImageReport, levels: gcv_annotate.SafetyLevels) -> dict[str, Any]:
    if report.error is not None:
        failure = gcv.image_failure(report.error.get("code", ""), report.error.get("message", ""))
        return gcv.failure_response(failure)
    return gcv_annotate.annotate(item, report.width or 0, report.height or 0, report.results, levels)


async def annotate_all(state: AppState, items: list[ImageRequest], workspace: int) -> list[dict[str, Any]]:
    """One AnnotateImageResponse per request item, in order; only the analyzers each image needs run. A
    feature whose analyzer the operator switched off is answered as unsupported, never run."""
    enabled = {*state.services.analyzers, *INTERNAL_ANALYZERS}
    items = [gcv.within(item, enabled) for item in items]
    sources: list[bytes | Failure] = list(await asyncio.gather(*(_source(state, item) for item in items)))
    groups: dict[tuple[str, ...], dict[int, bytes]] = {}
    logos: dict[int, bytes] = {}
    for i, (item, given) in enumerate(zip(items, sources, strict=True)):
        if isinstance(given, bytes) and item.analyzers:
            groups.setdefault(item.analyzers, {})[i] = given
            if any(f.type is FeatureType.LOGO_DETECTION for f in item.features):
                logos[i] = given
    reports = await state.gate.run(lambda: _analyse(state, groups, logos, workspace)) if groups else {}
    state.metrics.images.inc(len(reports))
    settings = state.settings
    levels = gcv_annotate.SafetyLevels(
        settings.safety_region_min_score,
        settings.safety_explicit_threshold,
        settings.safety_suggestive_threshold,
    )
    responses: list[dict[str, Any]] = []
    for i, (item, given) in enumerate(zip(items, sources, strict=True)):
        if isinstance(given, Failure):
            responses.append(gcv.failure_response(given))
        elif i in reports:
            responses.append(_response(item, reports[i], levels))
        else:  # only unsupported features were asked for: nothing ran
            responses.append(gcv_annotate.annotate(item, 0, 0, {}, levels))
    return responses


@router.post(
    "/v1/images:annotate",
    response_model=None,
    openapi_extra=DOC,
    summary="Google Cloud Vision images:annotate",
)
@router.post("/v1/projects/{project}/images:annotate", response_model=None, include_in_schema=False)
@router.post(
    "/v1/projects/{project}/locations/{location}/images:annotate",
    response_model=None,
    include_in_schema=False,
)
async def annotate(request: Request) -> JSONResponse:
    """Google Cloud Vision `images:annotate` (BatchAnnotateImages): up to 16 images, each with features."""
    as_int = gcv.wants_int_enums(request.query_params.get("$alt") or request.query_params.get("alt"))
    # Read the body first and outside the handlers below: the size guard interrupts it with its own error.
    body = await request.body()
    try:
        state: AppState = request.app.state.feedlens
        principal = await _authorise(request, state)
        items = gcv.parse_body(body, state.services.decoder.check_header)
        responses = await annotate_all(state, items, principal.workspace_id)
    except GcvError as exc:
        return google_error(exc)
    except ServerBusyError as exc:
        # 503: the official client retries UNAVAILABLE with backoff, which is what a full queue needs
        retry = {"Retry-After": str(exc.retry_after)}
        return google_error(GcvError(503, Code.UNAVAILABLE, exc.message, "SERVER_BUSY", retry))
    except ModelStoreError as exc:
        log.error("model unavailable on images:annotate: %s", exc.message)
        return google_error(GcvError(503, Code.UNAVAILABLE, exc.message, "MODEL_UNAVAILABLE"))
    except StorageError as exc:  # 507 as in feedlens's own API; Google's code for "out of a resource"
        log.error("storage on images:annotate: %s", exc.message)
        return google_error(GcvError(507, Code.RESOURCE_EXHAUSTED, exc.message, exc.code.upper()))
    except Exception:
        log.exception("unhandled error on %s", request.url.path)
        return google_error(GcvError(500, Code.INTERNAL, "Internal error encountered; it has been logged."))
    return JSONResponse({"responses": [gcv.encode_enums(r, as_int) for r in responses]})


# The HTTP statuses feedlens's own middleware and routing may answer on these paths, as Google's codes.
_FROM_HTTP = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    429: Code.RESOURCE_EXHAUSTED,
}


def from_problem(status: int, body: bytes) -> GcvError:
    """A problem+json answer of the app-wide layers as Google's error: an oversized body (413) or a NUL
    in the URL (422) is 400 INVALID_ARGUMENT, as Google answers a payload over its limit; a method other
    than POST is 404 NOT_FOUND, as on Google's front end."""
    try:
        detail = str(json.loads(body).get("detail", ""))
    except (ValueError, AttributeError):
        detail = ""
    if status == 413:
        limit = re.search(r"(\d+) bytes", detail)
        message = f"Request payload size exceeds the limit: {limit.group(1) if limit else '?'} bytes."
        return GcvError(400, Code.INVALID_ARGUMENT, message, "PAYLOAD_TOO_LARGE")
    if status in (404, 405):
        return GcvError(404, Code.NOT_FOUND, "Not found: feedlens serves POST /v1/images:annotate only.")
    if status == 507:
        return GcvError(507, Code.RESOURCE_EXHAUSTED, detail or "Insufficient storage.")
    if status >= 500:
        return GcvError(
            status, Code.UNAVAILABLE if status == 503 else Code.INTERNAL, detail or "Internal error."
        )
    return GcvError(
        status if status in _FROM_HTTP else 400,
        _FROM_HTTP.get(status, Code.INVALID_ARGUMENT),
        detail or "Invalid request.",
    )


class GoogleErrors(ProblemRewriter):
    """ASGI middleware, added outside RequestGuard: on the images:annotate paths, a problem+json answer
    from feedlens's app-wide layers (body over the size cap, NUL in the URL, wrong method) is rewritten
    into Google's error JSON. Other paths pass through untouched."""

    def owns(self, scope: Scope) -> bool:
        return bool(_PATH.fullmatch(scope["path"]))

    def convert(self, status: int, body: bytes) -> Response:
        return google_error(from_problem(status, body))
