"""Workspaces, API keys and per-key rate limits.

Keys are 256-bit random tokens, so a plain SHA-256 is enough to store them: there is nothing to brute
force, and a constant-cost lookup by hash keeps authentication off the hot path. The key is shown once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from feedlens.core.access import Principal, Scope
from feedlens.core.errors import FeedlensError
from feedlens.services.library import utc
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import ApiKey, Workspace, utcnow

KEY_PREFIX = "fl_"
_WORKSPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


__all__ = [
    "AccessError",
    "AccessService",
    "AuthError",
    "AuthFailure",
    "Bucket",
    "Principal",
    "RateLimiter",
    "Scope",
]


class AccessError(FeedlensError):
    code = "access_invalid"
    http_status = 422


class AuthFailure(StrEnum):
    """Why a request was not let in; each protocol words and shapes these its own way."""

    MISSING = "missing"  # no credentials at all
    INVALID = "invalid"  # unknown or revoked key, bad or expired session
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"  # the key's scope is too small


class AuthError(FeedlensError):
    """A request refused by `authorise`; `retry_after` (s) for RATE_LIMITED, `needed` for FORBIDDEN."""

    def __init__(
        self, failure: AuthFailure, message: str, retry_after: int = 0, needed: Scope | None = None
    ) -> None:
        super().__init__(message)
        self.code = failure.value
        self.failure = failure
        self.retry_after = retry_after
        self.needed = needed


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


AWS_KEY_ID_PREFIX = "feedlens-"


def signing_secret(key: str) -> str:
    """The AWS secret access key of a feedlens key: derived, so the server stores it without storing
    the key, and the key's holder can always derive it again (`feedlens keys aws KEY`)."""
    return hashlib.sha256(b"feedlens-sigv4\0" + key.encode()).hexdigest()


def aws_key_id(key_id: int) -> str:
    return f"{AWS_KEY_ID_PREFIX}{key_id}"


class AccessService:
    def __init__(self, database: Database) -> None:
        self.database = database

    def create_workspace(self, name: str) -> int:
        if not _WORKSPACE_NAME.fullmatch(name):
            raise AccessError(
                f"invalid workspace name {name!r}: 1-64 of a-z, 0-9, '-', '_'; starts with a letter or digit"
            )
        with self.database.session() as session:
            return repo.ensure_workspace(session, name)

    def workspace_id(self, name: str) -> int:
        with self.database.session() as session:
            found = repo.workspace_id(session, name)
        if found is None:
            raise AccessError(f"no workspace named {name!r} (create it with `feedlens workspaces create`)")
        return found

    def workspaces(self) -> list[dict[str, Any]]:
        with self.database.session() as session:
            rows = session.scalars(select(Workspace).order_by(Workspace.name))
            return [{"name": w.name, "created_at": utc(w.created_at)} for w in rows]

    def create_key(self, workspace: str, scope: Scope, name: str = "") -> tuple[str, dict[str, Any]]:
        """A new key for `workspace`: (the secret, shown once; its listing)."""
        workspace_id = self.workspace_id(workspace)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.database.session() as session:
            key = ApiKey(
                workspace_id=workspace_id,
                name=name,
                prefix=secret[:10],
                key_hash=hash_key(secret),
                signing_secret=signing_secret(secret),
                scope=scope,
            )
            session.add(key)
            session.flush()
            return secret, _key_view(key, workspace)

    def keys(self, workspace: str) -> list[dict[str, Any]]:
        workspace_id = self.workspace_id(workspace)
        with self.database.session() as session:
            rows = session.scalars(
                select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.id)
            )
            return [_key_view(k, workspace) for k in rows]

    def revoke_key(self, workspace: str, key_id: int) -> bool:
        workspace_id = self.workspace_id(workspace)
        with self.database.session() as session:
            key = session.scalar(
                select(ApiKey).where(ApiKey.workspace_id == workspace_id, ApiKey.id == key_id)
            )
            if key is None or key.revoked_at is not None:
                return False
            key.revoked_at = utcnow()
            return True

    def _principal(self, *where: Any) -> tuple[Principal, ApiKey] | None:
        """The one lookup: the live (not revoked) key matching `where`, as a principal, and its row."""
        with self.database.session() as session:
            row = session.execute(
                select(ApiKey, Workspace.name)
                .join(Workspace, Workspace.id == ApiKey.workspace_id)
                .where(ApiKey.revoked_at.is_(None), *where)
            ).first()
        if row is None:
            return None
        key, workspace = row
        principal = Principal(
            key_id=key.id, workspace_id=key.workspace_id, workspace=workspace, scope=Scope(key.scope)
        )
        return principal, key

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of an API key (as sent by a client); None when unknown or revoked."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
            return None
        found = self._principal(ApiKey.key_hash == hash_key(secret))
        return found[0] if found else None

    def principal_by_id(self, key_id: int) -> Principal | None:
        """The principal of a live key by its id (a web session names its key by id)."""
        found = self._principal(ApiKey.id == key_id)
        return found[0] if found else None

    def aws_credentials(self, secret: str) -> tuple[str, str] | None:
        """(AWS access key id, AWS secret access key) for a live key, storing the signing secret of a key
        made before there was one; None for an unknown or revoked key."""
        principal = self.authenticate(secret)
        if principal is None:
            return None
        derived = signing_secret(secret)
        with self.database.session() as session:
            key = session.get(ApiKey, principal.key_id)
            assert key is not None
            if key.signing_secret != derived:
                key.signing_secret = derived
        return aws_key_id(principal.key_id), derived

    def sigv4_principal(self, access_key_id: str) -> tuple[Principal, str] | None:
        """The principal and signing secret behind an AWS access key id; None if unknown, revoked or
        without a signing secret."""
        if not access_key_id.startswith(AWS_KEY_ID_PREFIX):
            return None
        number = access_key_id[len(AWS_KEY_ID_PREFIX) :]
        if not number.isdigit() or len(number) > 18:
            return None
        found = self._principal(ApiKey.id == int(number))
        if found is None or found[1].signing_secret is None:
            return None
        return found[0], str(found[1].signing_secret)


def _key_view(key: ApiKey, workspace: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "workspace": workspace,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "created_at": utc(key.created_at),
        "revoked_at": utc(key.revoked_at) if isinstance(key.revoked_at, datetime) else None,
    }


class Bucket(StrEnum):
    """Which of a key's two rate budgets a request spends (docs/api.md "Limits and concurrency")."""

    API = "api"  # analysis, search, writes and every other call: the configured rate and burst
    VIEWS = "views"  # thumbnails: cheap reads that a gallery makes by the hundred, VIEWS_FACTOR times more


# A thumbnail is one small blob read: a page of images shows dozens at once, and none of them should take
# from the budget meant for analysis, nor be refused while that budget lasts.
VIEWS_FACTOR = 10


class RateLimiter:
    """Token buckets per key and `Bucket`: API calls may make `burst` requests at once, refilled at
    `per_minute` / 60 per second; views (thumbnails) have a bucket of their own, VIEWS_FACTOR times
    larger and faster."""

    def __init__(self, per_minute: int, burst: int, clock: Any = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[tuple[int, Bucket], tuple[float, float]] = {}  # -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, key: int, bucket: Bucket = Bucket.API) -> float:
        """0 if the request may go ahead, else the seconds until it may (for Retry-After)."""
        scale = VIEWS_FACTOR if bucket is Bucket.VIEWS else 1
        rate, burst = self.rate * scale, self.burst * scale
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get((key, bucket), (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[(key, bucket)] = (tokens - 1.0, now)
                return 0.0
            self._buckets[(key, bucket)] = (tokens, now)
            return float((1.0 - tokens) / rate)


class SharedRateLimiter(RateLimiter):
    """The same buckets kept in PostgreSQL (storage/rate_limits.py), so every API replica on the database
    spends from one budget per key: N replicas allow the configured rate, not N times it. It costs each
    request one short transaction; `clock` is wall time (replicas compare it, as job leases do)."""

    def __init__(self, database: Database, per_minute: int, burst: int, clock: Any = time.time) -> None:
        super().__init__(per_minute, burst, clock)
        self.database = database

    def take(self, key: int, bucket: Bucket = Bucket.API) -> float:
        from feedlens.storage import rate_limits

        scale = VIEWS_FACTOR if bucket is Bucket.VIEWS else 1
        with self.database.session() as session:
            return rate_limits.take(
                session, key, bucket.value, self.rate * scale, self.burst * scale, float(self.clock())
            )


def authorise(
    principal: Principal | None, needed: Scope, limiter: RateLimiter, bucket: Bucket = Bucket.API
) -> Principal:
    """The one admission check every protocol runs once it knows who is calling: a known key, within its
    rate limit (of `bucket`), with a scope that allows `needed`. Raises AuthError; each protocol renders it
    its way."""
    if principal is None:
        raise AuthError(AuthFailure.INVALID, "unknown or revoked API key")
    wait = limiter.take(principal.key_id, bucket)
    if wait > 0:
        retry = max(1, int(wait + 0.999))
        raise AuthError(
            AuthFailure.RATE_LIMITED, f"rate limit exceeded; retry in {retry} s", retry_after=retry
        )
    if not principal.scope.allows(needed):
        raise AuthError(
            AuthFailure.FORBIDDEN,
            f"this key has scope {principal.scope!s}; {needed!s} is needed",
            needed=needed,
        )
    return principal
