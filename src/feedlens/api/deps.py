"""Dependencies as `Annotated` aliases: `State`, `Reader`, `Writer`, `Admin` (an authenticated key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from feedlens.api.problems import Problem
from feedlens.api.state import AppState
from feedlens.services.access import Principal, Scope

_bearer = APIKeyHeader(name="Authorization", auto_error=False, description="Bearer <key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


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


def _require(scope: Scope):  # type: ignore[no-untyped-def]
    def dependency(
        state: State,
        authorization: Annotated[str | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        secret = _secret(authorization, api_key)
        if not secret:
            raise Problem(
                401,
                "unauthorized",
                "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'",
                {"WWW-Authenticate": "Bearer"},
            )
        principal = state.access.authenticate(secret)
        if principal is None:
            raise Problem(401, "unauthorized", "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
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
