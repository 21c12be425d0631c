"""Query parameters shared by routes: lists, checked choices, countries narrowed to a token."""

from __future__ import annotations

from collections.abc import Sequence

from api.problems import ApiProblem
from api.services import Services
from reintegration.users import User

AGE_GROUPS = ("child", "adult")
MAX_VALUES = 50  # values of one filter; more is no question a person asks


def listed(raw: Sequence[str] | None, what: str) -> list[str]:
    """Values given as repeated parameters and/or comma-separated.

    Examples
    --------
    >>> listed(["sex,age_group", " country "], "by")
    ['sex', 'age_group', 'country']
    """
    values = [v.strip() for item in raw or () for v in item.split(",") if v.strip()]
    if len(values) > MAX_VALUES:
        raise ApiProblem(422, f"query parameter {what} lists more than {MAX_VALUES} values")
    return values


def choices(services: Services, name: str) -> tuple[str, ...]:
    """The codes a metadata field of the questionnaire accepts (sex, return_type, ...)."""
    return tuple(o.code for o in services.questionnaire.metadata_field(name).choices)


def checked(values: list[str], allowed: Sequence[str], what: str) -> frozenset[str] | None:
    """The values as a set (None when there are none), each one of ``allowed``.

    Raises
    ------
    ApiProblem
        422 naming the first value that is not allowed.
    """
    if not values:
        return None
    for value in values:
        if value not in allowed:
            raise ApiProblem(
                422, f"query parameter {what}: {value!r} is not one of {', '.join(allowed)}"
            )
    return frozenset(values)


def scoped_countries(values: list[str], user: User) -> frozenset[str] | None:
    """Countries asked for, narrowed to the token's (None: every country the token sees).

    Raises
    ------
    ApiProblem
        422 for a value that is not a three-letter code.
    """
    codes = set()
    for value in values:
        if len(value) != 3 or not value.isascii() or not value.isalpha():
            raise ApiProblem(
                422, f"query parameter country: {value!r} is not a three-letter country code"
            )
        codes.add(value.upper())
    if user.countries is None:
        return frozenset(codes) if codes else None
    return frozenset(codes) & user.countries if codes else user.countries
