"""Dependencies as `Annotated` aliases: `State`, `Reader`, `Writer`, `Admin`, `Viewer` (an authenticated key,
sent as a header or, from the web app, as a session cookie derived from one: api/session.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader
from starlette.concurrency import run_in_threadpool

from feedlens.api import session as sessions
from feedlens.api.problems import Problem
from feedlens.api.state import AppState
from feedlens.core.access import Principal, Scope
from feedlens.services.access import AuthError, AuthFailure, Bucket, authorise

_bearer = APIKeyHeader(name="Authorization", auto_error=False, description="Bearer <key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_cookie = APIKeyCookie(name=sessions.COOKIE, auto_error=False, description="POST /v1/session")
_ASK_FOR_KEY = "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'"
_STATUS = {
    AuthFailure.MISSING: 401,
    AuthFailure.INVALID: 401,
    AuthFailure.RATE_LIMITED: 429,
    AuthFailure.FORBIDDEN: 403,
}


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.feedlens
    return state


State = Annotated[AppState, Depends(get_state)]


def bearer_secret(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


def native_problem(exc: AuthError, session: bool = False) -> Problem:
    """An AuthError as problem+json: 401 with WWW-Authenticate, 429 with Retry-After, 403."""
    headers: dict[str, str] = {}
    detail = exc.message
    if exc.failure is AuthFailure.RATE_LIMITED:
        headers["Retry-After"] = str(exc.retry_after)
    elif exc.failure in (AuthFailure.MISSING, AuthFailure.INVALID):
        if session:
            detail = "the session has expired or is invalid; log in again"
        else:
            headers["WWW-Authenticate"] = "Bearer"
            detail = _ASK_FOR_KEY if exc.failure is AuthFailure.MISSING else exc.message
    code = {401: "unauthorized", 429: "rate_limited", 403: "forbidden"}[_STATUS[exc.failure]]
    return Problem(_STATUS[exc.failure], code, detail, headers)


def _require(scope: Scope, bucket: Bucket = Bucket.API):  # type: ignore[no-untyped-def]
    async def dependency(
        state: State,
        request: Request,
        authorization: Annotated[str | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_header)],
        cookie: Annotated[str | None, Depends(_cookie)],
    ) -> Principal:
        secret = (api_key or "").strip() or bearer_secret(authorization)
        access = state.services.access
        try:
            if secret:  # a key sent explicitly wins over a cookie
                principal = await run_in_threadpool(access.authenticate, secret)
            elif cookie:
                claims = sessions.verify(state.session_secret, cookie)
                principal = await run_in_threadpool(access.principal_by_id, claims[0]) if claims else None
                if principal is None:
                    raise native_problem(AuthError(AuthFailure.INVALID, "bad session"), session=True)
                if request.method not in sessions.SAFE_METHODS and not request.headers.get(
                    sessions.CSRF_HEADER
                ):
                    raise Problem(
                        403,
                        "csrf_missing",
                        f"a request with a session cookie needs the {sessions.CSRF_HEADER} header",
                    )
            else:
                raise AuthError(AuthFailure.MISSING, _ASK_FOR_KEY)
            return authorise(principal, scope, state.limiter, bucket)
        except AuthError as exc:
            raise native_problem(exc) from None

    return dependency


Reader = Annotated[Principal, Depends(_require(Scope.READ))]
Writer = Annotated[Principal, Depends(_require(Scope.WRITE))]
Admin = Annotated[Principal, Depends(_require(Scope.ADMIN))]
# a read key, rate-limited in its own larger bucket for cheap reads (thumbnails), not the analysis budget
Viewer = Annotated[Principal, Depends(_require(Scope.READ, Bucket.VIEWS))]
