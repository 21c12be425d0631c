"""Who may do what: DESIGN.md's role matrix, as data, in one place.

The API's routes and the dashboard's pages each declare the capability they need; this table
decides which roles hold it. Tests check every route and page against it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The four roles of DESIGN.md."""

    ENUMERATOR = "enumerator"
    MANAGER = "manager"
    ANALYST = "analyst"
    ADMIN = "admin"


class Capability(StrEnum):
    """A row of DESIGN.md's role matrix."""

    UPLOAD = "upload"  # upload batches, see their own batches and errors, score records
    AGGREGATES = "aggregates"  # aggregates, trajectories, dashboard pages of aggregates
    ROW_LEVEL = "row_level"  # every batch, row-level pseudonymised data, exports, data quality
    MODELS = "models"  # train, promote, jobs, model pages
    ADMIN = "admin"  # users, tokens, audit


GRANTS: dict[Capability, frozenset[Role]] = {
    Capability.UPLOAD: frozenset({Role.ENUMERATOR, Role.ANALYST, Role.ADMIN}),
    Capability.AGGREGATES: frozenset({Role.MANAGER, Role.ANALYST, Role.ADMIN}),
    Capability.ROW_LEVEL: frozenset({Role.ANALYST, Role.ADMIN}),
    Capability.MODELS: frozenset({Role.ANALYST, Role.ADMIN}),
    Capability.ADMIN: frozenset({Role.ADMIN}),
}


def allowed(role: Role | str, capability: Capability) -> bool:
    """Whether ``role`` holds ``capability``.

    Examples
    --------
    >>> allowed("manager", Capability.AGGREGATES), allowed("manager", Capability.UPLOAD)
    (True, False)
    """
    return Role(role) in GRANTS[capability]
