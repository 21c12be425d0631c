"""Display names of codes, read from the questionnaire spec (never spelled in Python)."""

from __future__ import annotations

import functools

import pycountry

from reintegration.quality import BLANK, NOT_APPLICABLE
from reintegration.questionnaire import load_questionnaire

LANGUAGE = "en"
FILTERED_FIELDS = ("sex", "return_type")


@functools.cache
def value_labels() -> dict[str, str]:
    """Code -> English label for the grouping values: sex, return type, age group, assistance,
    missing codes and not-applicable kinds."""
    q = load_questionnaire()
    labels: dict[str, str] = {
        "child": f"Child (under {q.child_age_below})",
        "adult": f"Adult ({q.child_age_below} or older)",
        BLANK: "Left blank",
        NOT_APPLICABLE: "Not applicable",
    }
    for name in (*FILTERED_FIELDS, "assistance"):
        spec = q.metadata_field(name)
        for option in (*spec.choices, *((spec.exclusive,) if spec.exclusive else ())):
            labels.setdefault(option.code, option.labels.get(LANGUAGE, option.code))
    for option in q.missing_codes:
        labels.setdefault(option.code, option.labels.get(LANGUAGE, option.code))
    return labels


def choices(field: str) -> list[tuple[str, str]]:
    """(code, label) of a metadata field's choices, in spec order."""
    spec = load_questionnaire().metadata_field(field)
    return [(o.code, o.labels.get(LANGUAGE, o.code)) for o in spec.choices]


@functools.cache
def country_label(code: str) -> str:
    """A country's common name, then its code (``Senegal (SEN)``); the code alone if unknown."""
    country = pycountry.countries.get(alpha_3=code)
    if country is None:
        return code
    name = getattr(country, "common_name", None) or country.name
    return f"{name} ({code})"


def item_labels() -> dict[str, str]:
    """Item id -> a short label: the item's question in English, cut to 60 characters."""
    labels = {}
    for item in load_questionnaire().items:
        text = item.question.get(LANGUAGE, item.id)
        labels[item.id] = text if len(text) <= 60 else text[:57].rstrip() + "..."
    return labels
