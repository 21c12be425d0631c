"""Bodies of the administration routes: users and tokens, the audit trail, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from reintegration.errors import UserError
from reintegration.roles import Role
from reintegration.users import NAME_PATTERN, check_name

EVERY_COUNTRY = "all"


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

    name: str = Field(
        min_length=1,
        max_length=64,
        description="1 to 64 letters, digits, dot, underscore, @ or hyphen, starting with a "
        "letter or digit.",
        json_schema_extra={"pattern": f"^{NAME_PATTERN.pattern}$"},
    )
    role: Role
    countries: (
        Annotated[list[str], Field(max_length=300, json_schema_extra={"minItems": 1})]
        | Literal["all"]
    ) = Field(
        description='The ISO3 codes the token is limited to (at least one), or "all" for a '
        "token that is not limited to some countries. An empty list is refused.",
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        try:
            return check_name(value)
        except UserError as exc:  # pydantic reports a ValueError as a 422 naming the field
            raise ValueError(str(exc)) from None

    @field_validator("countries")
    @classmethod
    def _some_countries(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not [c for c in value if c.strip()]:
            raise ValueError(
                'the list of countries is empty: give at least one ISO3 code, or "all" for '
                "every country"
            )
        return value

    def country_codes(self) -> list[str] | None:
        """The codes asked for; None for every country."""
        return None if self.countries == EVERY_COUNTRY else list(self.countries)


class UserCreated(UserOut):
    """The new user and their token, shown this once."""

    token: str
    note: str


class TokenReissued(BaseModel):
    """A user's new token, shown this once; the old one no longer works."""

    name: str
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
