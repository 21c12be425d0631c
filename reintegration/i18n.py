"""Languages: English, French and Arabic, from gettext catalogues (``locale/<lang>/messages.po``).

Translators edit the ``.po`` files (Babel reads them as they are; no compile step); code marks
what it shows with :func:`gettext` (``_``) and formats numbers and dates with the functions
below. The language of the current request or command lives in a context variable, set by the
front end that knows it (the dashboards from the user's choice or the browser, the API from
``Accept-Language``); the CLI and the domain's defaults stay English. Column names, codes and
numbers in files (CSV, JSON, the fixable file) are never translated, so files round-trip.

>>> with use_language("fr"):
...     gettext("Overview")
'Vue d’ensemble'
>>> gettext("Overview")
'Overview'
>>> with use_language("ar"):
...     direction()
'rtl'
>>> negotiate("ar-IQ,ar;q=0.9,en;q=0.5")
'ar'
>>> negotiate("de-DE")
'en'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from babel import Locale, dates, numbers
from babel.messages.pofile import read_po

DEFAULT = "en"
LANGUAGES: tuple[str, ...] = ("en", "fr", "ar")
NAMES: Mapping[str, str] = {"en": "English", "fr": "Français", "ar": "العربية"}
RIGHT_TO_LEFT = frozenset({"ar"})
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"

_language: ContextVar[str] = ContextVar("reintegration_language", default=DEFAULT)


def current() -> str:
    """The language of the current request or command (``en`` unless a front end set one)."""
    return _language.get()


def direction(language: str | None = None) -> str:
    """``rtl`` for Arabic, ``ltr`` otherwise."""
    return "rtl" if (language or current()) in RIGHT_TO_LEFT else "ltr"


def supported(language: str | None) -> str | None:
    """``language`` if the platform speaks it (``fr-SN`` counts as ``fr``), else None."""
    if not language:
        return None
    base = str(language).strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


@contextlib.contextmanager
def use_language(language: str | None) -> Iterator[str]:
    """Run a block in ``language`` (an unsupported one falls back to English)."""
    chosen = supported(language) or DEFAULT
    token = _language.set(chosen)
    try:
        yield chosen
    finally:
        _language.reset(token)


def set_language(language: str | None) -> str:
    """Set the current context's language (front ends call this once per request)."""
    chosen = supported(language) or DEFAULT
    _language.set(chosen)
    return chosen


def negotiate(accept_language: str | None) -> str:
    """The best supported language of an ``Accept-Language`` header, English when none fits."""
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(str(accept_language).split(",")):
        piece, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = supported(piece)
        if language and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else DEFAULT


@functools.cache
def catalogue(language: str) -> Mapping[str, Any]:
    """msgid -> translation (a string, or a tuple of plural forms) of ``language``'s ``.po``
    file; empty translations are left out, so they fall back to English."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        messages = read_po(handle, locale=language)
    table: dict[str, Any] = {}
    for message in messages:
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        if isinstance(message.string, tuple | list):
            if all(message.string):
                table[key] = tuple(message.string)
        elif message.string:
            table[key] = message.string
    return table


def gettext(message: str, /, **params: Any) -> str:
    """``message`` in the current language, with ``{name}`` placeholders filled from
    ``params`` (after translating, so translators move them freely)."""
    translated = catalogue(current()).get(message, message) if current() != DEFAULT else message
    if isinstance(translated, tuple):
        translated = translated[0]
    return translated.format(**params) if params else translated


_ = gettext


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the current language; ``{n}`` and
    ``params`` are filled in."""
    language = current()
    forms = catalogue(language).get(singular) if language != DEFAULT else None
    if isinstance(forms, tuple):
        index = _plural_index(language, n)
        text = forms[min(index, len(forms) - 1)]
    else:
        text = singular if n == 1 else plural
    return text.format(n=format_integer(n), **params)


def _plural_index(language: str, n: int) -> int:
    # CLDR plural rules through Babel, mapped to the order gettext lists the forms in.
    rule = Locale.parse(language).plural_form
    category = rule(n)
    order = {
        "ar": ("zero", "one", "two", "few", "many", "other"),
        "fr": ("one", "many", "other"),
    }.get(language, ("one", "other"))
    return order.index(category) if category in order else len(order) - 1


def locale() -> Locale:
    """Babel's locale of the current language (Arabic with Western digits, as field offices
    write them in data)."""
    return Locale.parse(current())


def format_integer(value: float | int) -> str:
    """A count with the current language's grouping (``1,234``, ``1 234``)."""
    return numbers.format_decimal(int(value), format="#,##0", locale=_number_locale())


def format_decimal(value: float, digits: int = 2) -> str:
    """A mean or score to ``digits`` decimals in the current language (``0,42`` in French)."""
    pattern = "#,##0." + "0" * digits if digits > 0 else "#,##0"
    return numbers.format_decimal(value, format=pattern, locale=_number_locale())


def format_percent(share: float, digits: int = 0) -> str:
    """A share (0.169) as a percentage in the current language (``17%``, ``17 %``), the
    language's own spacing and sign kept.

    >>> with use_language("fr"):
    ...     format_percent(0.169, 1)
    '16,9\xa0%'
    """
    language_pattern = _number_locale().percent_formats[None].pattern
    decimals = "." + "0" * digits if digits > 0 else ""
    pattern = language_pattern.replace("#,##0", "#,##0" + decimals, 1)
    return numbers.format_percent(share, format=pattern, locale=_number_locale())


def format_date(value: dt.date, form: str = "medium") -> str:
    """A date in the current language (``5 Dec 2026``, ``5 déc. 2026``, ``05/12/2026``).

    >>> with use_language("ar"):
    ...     format_date(dt.date(2026, 12, 5))
    '05/12/2026'
    """
    # CLDR's Arabic patterns put right-to-left marks between day, month and year; without them
    # "05/12/2026" stays one run of digits whatever the direction of the text around it.
    return dates.format_date(value, format=form, locale=locale()).replace("\u200f", "")


def _number_locale() -> Locale:
    # Arabic text keeps Latin digits (as the data, the exports and the field forms write them);
    # Babel's "ar" already uses them, with Arabic separators.
    return locale()
