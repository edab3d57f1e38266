"""Log the web app in and out: an API key in, a session cookie out (api/session.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api import session as sessions
from feedlens.api.deps import Reader, State
from feedlens.api.problems import Problem

router = APIRouter(tags=["session"])


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(min_length=1, max_length=200, description="an API key of the workspace")]


def _view(workspace: str, scope: str, expires: int | None) -> dict[str, Any]:
    when = datetime.fromtimestamp(expires, UTC).isoformat() if expires else None
    return {"workspace": workspace, "scope": scope, "expires_at": when}


@router.post("/v1/session")
async def login(body: LoginBody, request: Request, response: Response, state: State) -> dict[str, Any]:
    """Trade an API key for an HttpOnly, SameSite=Strict session cookie (8 hours). Requests that change
    state with the cookie must send the `X-Feedlens-CSRF` header."""
    principal = await run_in_threadpool(state.services.access.authenticate, body.key.strip())
    if principal is None:
        raise Problem(401, "unauthorized", "unknown or revoked API key")
    token, expires = sessions.issue(state.session_secret, principal.key_id)
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=sessions.TTL_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return _view(principal.workspace, str(principal.scope), expires)


@router.get("/v1/session")
async def current(request: Request, state: State, who: Reader) -> dict[str, Any]:
    """Who the request is authenticated as (by key or by cookie)."""
    claims = sessions.verify(state.session_secret, request.cookies.get(sessions.COOKIE, ""))
    return _view(who.workspace, str(who.scope), claims[1] if claims else None)


@router.delete("/v1/session", status_code=204, response_class=Response)
async def logout(request: Request) -> Response:
    """Forget the session cookie (always answers 204; needs the CSRF header, as every cookie write does)."""
    if not request.headers.get(sessions.CSRF_HEADER):
        raise Problem(403, "csrf_missing", f"send the {sessions.CSRF_HEADER} header to log out")
    response = Response(status_code=204)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")
    return response
