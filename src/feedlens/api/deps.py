"""Dependencies as `Annotated` aliases: `State`, `Reader`, `Writer`, `Admin` (an authenticated key, sent as a
header or, from the web app, as a session cookie derived from one: api/session.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader

from feedlens.api import session as sessions
from feedlens.api.problems import Problem
from feedlens.api.state import AppState
from feedlens.services.access import Principal, Scope

_bearer = APIKeyHeader(name="Authorization", auto_error=False, description="Bearer <key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_cookie = APIKeyCookie(name=sessions.COOKIE, auto_error=False, description="POST /v1/session")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.feedlens
    return state


State = Annotated[AppState, Depends(get_state)]


def _secret(authorization: str | None, api_key: str | None) -> str | None:
    if api_key:
        return api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def from_cookie(state: AppState, request: Request, token: str) -> Principal:
    """The principal of a session cookie; 401 when forged, expired or its key revoked, 403 `csrf_missing`
    when a state-changing request lacks the CSRF header."""
    claims = sessions.verify(state.session_secret, token)
    principal = sessions.principal_of(state.services.database, claims[0]) if claims else None
    if principal is None:
        raise Problem(401, "unauthorized", "the session has expired or is invalid; log in again")
    if request.method not in sessions.SAFE_METHODS and not request.headers.get(sessions.CSRF_HEADER):
        raise Problem(
            403, "csrf_missing", f"a request with a session cookie needs the {sessions.CSRF_HEADER} header"
        )
    return principal


def _require(scope: Scope):  # type: ignore[no-untyped-def]
    def dependency(
        state: State,
        request: Request,
        authorization: Annotated[str | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_header)],
        cookie: Annotated[str | None, Depends(_cookie)],
    ) -> Principal:
        secret = _secret(authorization, api_key)
        if secret:  # a key sent explicitly wins over a cookie
            principal = state.access.authenticate(secret)
            if principal is None:
                raise Problem(
                    401, "unauthorized", "unknown or revoked API key", {"WWW-Authenticate": "Bearer"}
                )
        elif cookie:
            principal = from_cookie(state, request, cookie)
        else:
            raise Problem(
                401,
                "unauthorized",
                "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'",
                {"WWW-Authenticate": "Bearer"},
            )
        wait = state.limiter.take(principal.key_id)
        if wait > 0:
            retry = max(1, int(wait + 0.999))
            raise Problem(
                429, "rate_limited", f"rate limit exceeded; retry in {retry} s", {"Retry-After": str(retry)}
            )
        if not principal.scope.allows(scope):
            raise Problem(403, "forbidden", f"this key has scope {principal.scope!s}; {scope!s} is needed")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(_require(Scope.READ))]
Writer = Annotated[Principal, Depends(_require(Scope.WRITE))]
Admin = Annotated[Principal, Depends(_require(Scope.ADMIN))]
