"""Errors as RFC 9457 `application/problem+json`, with a stable `code` a client can switch on."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from feedlens.core.errors import FeedlensError, ImageError, ImageErrorCode

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

IMAGE_STATUS = {
    ImageErrorCode.UNSUPPORTED_FORMAT: 415,
    ImageErrorCode.TOO_LARGE: 413,
    ImageErrorCode.TOO_MANY_PIXELS: 413,
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
# Codes whose status differs from their error's own `http_status` (422 for a coded service error).
CODE_STATUS = {
    "not_enough_labels": 409,  # categories
    "unknown_task": 404,  # model registry and training runs
    "model_not_found": 404,
    "artifact_not_found": 404,
    "run_not_found": 404,
    "already_production": 409,
    "nothing_to_roll_back": 409,
    "no_production_model": 409,
    "classes_mismatch": 409,
    "training_busy": 429,
    "not_in_review": 409,  # feedback
    "nothing_to_confirm": 409,
}


class Problem(Exception):  # noqa: N818 - reads as what it is: `raise Problem(404, ...)`
    """Raise from a route to answer with a problem document."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"urn:feedlens:error:{code}",  # a stable name, not a page to fetch
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def item_problem(
    error: Mapping[str, str] | None, default: str = "the image could not be analysed"
) -> Problem:
    """A per-image error (`{"code", "message"}` from a report or an ingest outcome) as a problem: image
    and fetch codes keep their own statuses, anything else (analyzer_failed, feed errors) is 422."""
    from feedlens.services.fetch import FetchErrorCode

    error = error or {}
    code = error.get("code", "analyzer_failed")
    status = 422
    if code in ImageErrorCode.__members__.values():
        status = IMAGE_STATUS.get(ImageErrorCode(code), 422)
    elif code in FetchErrorCode.__members__.values():
        status = FetchErrorCode(code).http_status
    return Problem(status, code, error.get("message", default))


def status_of(exc: FeedlensError) -> int:
    if isinstance(exc, ImageError):
        return IMAGE_STATUS.get(exc.image_code, 422)
    return CODE_STATUS.get(str(exc.code), int(exc.http_status))


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(FeedlensError)
    async def _feedlens(_: Request, exc: FeedlensError) -> JSONResponse:
        retry = getattr(exc, "retry_after", None)  # server busy: when to come back
        headers = {"Retry-After": str(retry)} if isinstance(retry, int) else None
        # the error's extra fields (a taxonomy's or dataset's every problem, so it is fixed in one pass)
        extra = {k: v for k, v in exc.to_dict().items() if k not in ("code", "message")}
        return problem_response(status_of(exc), str(exc.code), exc.message, headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return problem_response(
            422, "invalid_request", "the request does not match the schema", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return problem_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "unexpected server error; it has been logged")
