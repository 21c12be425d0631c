"""Who may do what, checked where the data is read or changed.

Every domain function that reads or changes users, the audit trail, models or row-level data
takes the caller and asks :func:`require` first, so the API, the dashboards and the command
line cannot differ: the API's route rules (``api/access.py``) and the dashboard's page gates
are a second check in front of this one, never the only one. The command line acts as
:data:`CLI`, an administrator without a country limit (whoever runs it holds the store).
"""

from __future__ import annotations

from dataclasses import dataclass

from reintegration.errors import Forbidden
from reintegration.roles import Capability, Role, allowed


@dataclass(frozen=True)
class User:
    """Who holds a token: name, role, and the countries it is limited to (None: all)."""

    name: str
    role: Role
    countries: frozenset[str] | None

    def sees_country(self, country: str | None) -> bool:
        """Whether this user's scope includes ``country``."""
        return self.countries is None or country in self.countries


# What a role without the capability may not do; the API's 403s are these sentences too.
WHAT = {
    Capability.UPLOAD: "upload batches, see batches or score records",
    Capability.AGGREGATES: "see aggregates or trajectories",
    Capability.ROW_LEVEL: "see row-level data or exports",
    Capability.MODELS: "train or promote models or see jobs",
    Capability.ADMIN: "manage users or read the audit trail",
}

CLI = User(name="cli", role=Role.ADMIN, countries=None)
"""The command line's principal: an administrator for every country."""


def cli_caller(actor: str | None = None) -> User:
    """The command line's principal, named ``actor`` in the audit (default ``cli``).

    Examples
    --------
    >>> cli_caller("ops").name, cli_caller().role.value, cli_caller().countries
    ('ops', 'admin', None)
    """
    return CLI if not actor else User(name=actor, role=Role.ADMIN, countries=None)


def refusal(caller: User, capability: Capability, *, every_country: bool = False) -> str | None:
    """Why ``caller`` may not use ``capability`` (a sentence), or None when they may.

    Examples
    --------
    >>> refusal(User("ana", Role.ANALYST, frozenset({"SEN"})), Capability.MODELS,
    ...         every_country=True)[:34]
    'this token is limited to SEN, and '
    >>> refusal(CLI, Capability.ADMIN, every_country=True) is None
    True
    """
    if not allowed(caller.role, capability):
        return f"the {caller.role.value} role may not {WHAT[capability]}"
    if every_country and caller.countries is not None:
        return (
            f"this token is limited to {', '.join(sorted(caller.countries))}, and this request "
            "concerns every country: it needs a token that is not limited to some countries"
        )
    return None


def may(caller: User | None, capability: Capability, *, every_country: bool = False) -> bool:
    """Whether ``caller`` (None: nobody logged in) may use ``capability``."""
    return caller is not None and refusal(caller, capability, every_country=every_country) is None


def require(caller: User, capability: Capability, *, every_country: bool = False) -> None:
    """Refuse unless ``caller``'s role holds ``capability`` (and, when ``every_country``, their
    token is not limited to some countries).

    Parameters
    ----------
    caller : User
        Who asks (:data:`CLI` for the command line).
    capability : Capability
        The row of DESIGN.md's role matrix the action belongs to.
    every_country : bool, default False
        The data spans every country and cannot be narrowed (models, users, the audit trail).

    Raises
    ------
    Forbidden
        With the sentence the API and the dashboards show.
    """
    reason = refusal(caller, capability, every_country=every_country)
    if reason is not None:
        raise Forbidden(reason)
