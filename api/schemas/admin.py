"""Bodies of the administration routes: users and tokens, the audit trail, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from reintegration.roles import Role


class UserOut(BaseModel):
    """A user: name, role, and the countries the token is limited to (null: all)."""

    name: str
    role: Role
    countries: list[str] | None


class Me(UserOut):
    """The caller, with what their role may do."""

    capabilities: list[str]


class UserCreate(BaseModel):
    """A user to add; the token is answered once and never again."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    role: Role
    countries: list[str] | None = Field(
        default=None, max_length=300, description="ISO3 codes; null or empty: every country."
    )


class UserCreated(UserOut):
    """The new user and their token, shown this once."""

    token: str
    note: str


class AuditEntry(BaseModel):
    """Who did what, when, on which batch or model (counts and ids, never answers)."""

    id: int
    at: datetime
    actor: str
    action: str
    batch_id: str | None
    target: str | None
    detail: Any
