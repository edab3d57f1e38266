"""Typed errors with stable codes.

Codes are part of the public contract (CLI JSON, and later HTTP problem+json): never rename one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ImageErrorCode(StrEnum):
    """Why an input image was refused. Stable strings."""

    EMPTY = "empty"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_SMALL = "too_small"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    UNREADABLE = "unreadable"
    EXTREME_ASPECT_RATIO = "extreme_aspect_ratio"


class FeedlensError(Exception):
    """Base of every error feedlens raises on purpose.

    `http_status` is the status the native API answers with (api/problems.py may refine it by `code`);
    `to_dict()` is the error's JSON form, with any extra fields (e.g. `problems`) a client needs.
    """

    code: str = "error"
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    def problem_lines(self) -> list[str]:
        """Each problem on a line of its own, for errors that list several (empty otherwise)."""
        return []


class CodedError(FeedlensError):
    """A request a service cannot honour, with its reason as a stable `code` chosen where it is raised
    (the API maps codes to HTTP statuses in api/problems.py; 422 unless it says otherwise)."""

    http_status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ImageError(FeedlensError):
    """Bad input image: the caller's fault, reported per item, never fatal to a batch."""

    def __init__(self, code: ImageErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code.value
        self.image_code = code


class ModelStoreError(FeedlensError):
    """A model artifact is missing, corrupt or cannot be built. `fix` is the command that repairs it."""

    code = "model_unavailable"

    def __init__(self, message: str, fix: str | None = None) -> None:
        full = f"{message} (fix: {fix})" if fix else message
        super().__init__(full)
        self.fix = fix


class ConfigError(FeedlensError):
    """Invalid configuration or usage: the operator's fault, fatal for the command."""

    code = "config_error"


class UnknownAnalyzerError(ConfigError):
    code = "unknown_analyzer"
    http_status = 422


class StorageError(FeedlensError):
    """The data folder or database cannot take a write: disk full, read-only, or no permission.

    Answered 507 Insufficient Storage (the request was fine; retry once there is room), and a one-line CLI
    error with exit 2. Whatever was being written is left out whole: no half-written file or record.
    """

    http_status = 507

    FULL = "storage_full"
    NOT_WRITABLE = "storage_not_writable"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_os_error(cls, exc: OSError, where: object) -> StorageError | None:
        """The typed error for a disk condition (ENOSPC, EDQUOT, EROFS, EACCES, EPERM), else None."""
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return cls(cls.FULL, f"no space left to write {where}: free some disk space and retry")
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason = "is read-only" if exc.errno == errno.EROFS else "is not writable by this user"
            return cls(cls.NOT_WRITABLE, f"{where} {reason}: point FEEDLENS_DATA_DIR at a writable folder")
        return None
