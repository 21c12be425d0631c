"""Display names of codes in the reader's language, read from the questionnaire spec (never
spelled in Python), from pycountry's translations (countries) and from the catalogues (the
few labels the spec does not carry)."""

from __future__ import annotations

import functools
import gettext

import pycountry

from reintegration import i18n
from reintegration.i18n import _
from reintegration.quality import BLANK, NOT_APPLICABLE
from reintegration.questionnaire import load_questionnaire

FILTERED_FIELDS = ("sex", "return_type")


def _language() -> str:
    # The spec carries every language the platform speaks; a spec without one falls back to
    # English rather than to codes.
    language = i18n.current()
    return language if language in load_questionnaire().languages else i18n.DEFAULT


def value_labels() -> dict[str, str]:
    """Code -> label in the current language for the grouping values: sex, return type, age
    group, assistance, missing codes and not-applicable kinds."""
    return dict(_value_labels(_language()))


@functools.cache
def _value_labels(language: str) -> dict[str, str]:
    q = load_questionnaire()
    with i18n.use_language(language):
        labels: dict[str, str] = {
            "child": _("Child (under {age})", age=q.child_age_below),
            "adult": _("Adult ({age} or older)", age=q.child_age_below),
            BLANK: _("Left blank"),
            NOT_APPLICABLE: _("Not applicable"),
        }
    for name in (*FILTERED_FIELDS, "assistance"):
        spec = q.metadata_field(name)
        for option in (*spec.choices, *((spec.exclusive,) if spec.exclusive else ())):
            labels.setdefault(option.code, option.labels.get(language, option.code))
    for option in q.missing_codes:
        labels.setdefault(option.code, option.labels.get(language, option.code))
    return labels


def choices(field: str) -> list[tuple[str, str]]:
    """(code, label) of a metadata field's choices, in spec order, in the current language."""
    language = _language()
    spec = load_questionnaire().metadata_field(field)
    return [(o.code, o.labels.get(language, o.code)) for o in spec.choices]


def country_label(code: str) -> str:
    """A country's common name in the current language, then its code (``Sénégal (SEN)``);
    the code alone if unknown."""
    return _country_label(code, i18n.current())


@functools.cache
def _countries(language: str) -> gettext.NullTranslations:
    if language == i18n.DEFAULT:
        return gettext.NullTranslations()
    return gettext.translation(
        "iso3166-1", pycountry.LOCALES_DIR, languages=[language], fallback=True
    )


@functools.cache
def _country_label(code: str, language: str) -> str:
    country = pycountry.countries.get(alpha_3=code)
    if country is None:
        return code
    translations = _countries(language)
    common = getattr(country, "common_name", None)
    name = translations.gettext(common) if common else None
    if not name or (name == common and language != i18n.DEFAULT):
        name = translations.gettext(country.name)
    return f"{name} ({code})"


def item_labels() -> dict[str, str]:
    """Item id -> a short label: the item's question in the current language, cut to 60
    characters."""
    return dict(_item_labels(_language()))


@functools.cache
def _item_labels(language: str) -> dict[str, str]:
    labels = {}
    for item in load_questionnaire().items:
        text = item.question.get(language, item.id)
        labels[item.id] = text if len(text) <= 60 else text[:57].rstrip() + "..."
    return labels


def dimension_labels() -> dict[str, str]:
    """Dimension -> its name in the current language (``economic`` -> ``Economic dimension``)."""
    language = _language()
    return {g: labels.get(language, g) for g, labels in load_questionnaire().groups.items()}


def role_label(role: str) -> str:
    """A role's name in the current language (the code if unknown)."""
    names = {
        "admin": _("admin"),
        "analyst": _("analyst"),
        "manager": _("manager"),
        "enumerator": _("enumerator"),
    }
    return names.get(role, role)


def band_label(label: str) -> str:
    """A months-since-return band's name in the current language (``label`` is its canonical
    name, as the data and the API spell it)."""
    from reintegration.followup import load_follow_up

    for band in load_follow_up().bands:
        if band.label == label:
            return band.names.get(i18n.current(), label)
    return label
