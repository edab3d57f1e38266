"""Browser sessions derived from an API key: `<img>` tags cannot send an Authorization header, so the web
app trades a key for a cookie holding a signed, expiring token.

The token is itsdangerous's URL-safe signed serialisation of `{"k": key id, "e": expiry}` under a per-process
secret; the key's row is read again on every request, so revoking the key ends its sessions at once. The
cookie is HttpOnly (scripts cannot read it) and SameSite=Strict; requests that change state with it must
also carry the `X-Feedlens-CSRF` header, which a cross-site form cannot send.
"""

from __future__ import annotations

import time

from itsdangerous import BadData, URLSafeSerializer

COOKIE = "feedlens_session"
CSRF_HEADER = "X-Feedlens-CSRF"
TTL_S = 8 * 3600  # a working day
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SALT = "feedlens-web-session"  # keeps these tokens apart from anything else signed with the secret
MAX_TOKEN = 512


def issue(secret: bytes, key_id: int, now: float | None = None, ttl: int = TTL_S) -> tuple[str, int]:
    """(token, expiry as unix seconds) for a key."""
    expires = int((time.time() if now is None else now) + ttl)
    token = URLSafeSerializer(secret, salt=_SALT).dumps({"k": key_id, "e": expires})
    return str(token), expires


def verify(secret: bytes, token: str, now: float | None = None) -> tuple[int, int] | None:
    """(key id, expiry) of a well-signed, unexpired token; None otherwise (forged, expired, garbage)."""
    if len(token) > MAX_TOKEN:
        return None
    try:
        claims = URLSafeSerializer(secret, salt=_SALT).loads(token)
        key_id, expires = int(claims["k"]), int(claims["e"])
    except (BadData, ValueError, KeyError, TypeError):
        return None
    if expires <= (time.time() if now is None else now):
        return None
    return key_id, expires
