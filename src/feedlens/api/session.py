"""Browser sessions derived from an API key: `<img>` tags cannot send an Authorization header, so the web
app trades a key for a cookie holding a signed, expiring token.

The token is `base64url({"k": key id, "e": expiry}) . base64url(HMAC-SHA256)` under a per-process secret;
the key's row is read again on every request, so revoking the key ends its sessions at once. The cookie is
HttpOnly (scripts cannot read it) and SameSite=Strict; requests that change state with it must also carry
the `X-Feedlens-CSRF` header, which a cross-site form cannot send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from sqlalchemy import select

from feedlens.services.access import Principal, Scope
from feedlens.storage.database import Database
from feedlens.storage.tables import ApiKey, Workspace

COOKIE = "feedlens_session"
CSRF_HEADER = "X-Feedlens-CSRF"
TTL_S = 8 * 3600  # a working day
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: bytes, key_id: int, now: float | None = None, ttl: int = TTL_S) -> tuple[str, int]:
    """(token, expiry as unix seconds) for a key."""
    expires = int((time.time() if now is None else now) + ttl)
    body = _b64(json.dumps({"k": key_id, "e": expires}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}", expires


def verify(secret: bytes, token: str, now: float | None = None) -> tuple[int, int] | None:
    """(key id, expiry) of a well-signed, unexpired token; None otherwise."""
    if len(token) > 512 or token.count(".") != 1 or not token.isascii():  # compare_digest refuses non-ASCII
        return None
    body, signature = token.split(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        claims = json.loads(_unb64(body))
        key_id, expires = int(claims["k"]), int(claims["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires <= (time.time() if now is None else now):
        return None
    return key_id, expires


def principal_of(database: Database, key_id: int) -> Principal | None:
    """The live (not revoked) key with this id, as a principal."""
    with database.session() as session:
        row = session.execute(
            select(ApiKey, Workspace.name)
            .join(Workspace, Workspace.id == ApiKey.workspace_id)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        ).first()
    if row is None:
        return None
    key, workspace = row
    return Principal(
        key_id=key.id, workspace_id=key.workspace_id, workspace=workspace, scope=Scope(key.scope)
    )
