"""Who may do what: key scopes and the authenticated caller (pure values, shared by every layer)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """Ordered: each scope includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key of one workspace with one scope."""

    key_id: int
    workspace_id: int
    workspace: str
    scope: Scope
