"""The filters of the aggregate pages: read from the URL's query, drawn as controls, written back
to the URL when they change, and turned into ``reintegration.analytics.Filters`` within the
user's countries.

The query names are short and readable, so a shared link says what it shows:
``?country=GIN,SEN&from=2025-01-01&to=2025-06-30&round=1,2&sex=female&age=child&return=forced
&index=rss-v1-provisional&exclude=flagged`` (``exclude=flagged``: leave out the enumerators the
data-quality check flags).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any
from urllib.parse import quote

from dash import Input, dcc, html

from dashboards.labels import choices, country_label, value_labels
from reintegration.analytics import Filters
from reintegration.users import User

QUERY_NAMES = {
    "countries": "country",
    "date_from": "from",
    "date_to": "to",
    "rounds": "round",
    "sex": "sex",
    "age_group": "age",
    "return_type": "return",
    "index_version": "index",
    "exclude_flagged": "exclude",
}
FLAGGED = "flagged"
"""The value of ``exclude`` in the address, and of the switch when it is on."""
AGE_GROUPS = ("child", "adult")
_COUNTRY = re.compile(r"^[A-Z]{3}$")
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class FilterState:
    """What the filter controls hold (empty: no restriction)."""

    countries: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    rounds: tuple[int, ...] = ()
    sex: tuple[str, ...] = ()
    age_group: tuple[str, ...] = ()
    return_type: tuple[str, ...] = ()
    index_version: str | None = None
    exclude_flagged: bool = False


def _codes(field: str) -> set[str]:
    return {code for code, _ in choices(field)}


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_query(query: Mapping[str, Any]) -> tuple[FilterState, list[str]]:
    """The filters in a page's query, and a sentence for each part that was ignored.

    Examples
    --------
    >>> state, problems = parse_query({"country": "sen,GIN", "round": "2,x", "sex": "female"})
    >>> state.countries, state.rounds, state.sex
    (('GIN', 'SEN'), (2,), ('female',))
    >>> problems
    ["round: 'x' is not a round number"]
    """
    problems: list[str] = []
    values: dict[str, Any] = {}

    def text(name: str) -> str:
        value = query.get(QUERY_NAMES[name])
        return str(value) if value is not None else ""

    countries = [c.upper() for c in _list(text("countries"))]
    for bad in [c for c in countries if not _COUNTRY.match(c)]:
        problems.append(f"country: {bad!r} is not a three-letter country code")
    values["countries"] = tuple(sorted({c for c in countries if _COUNTRY.match(c)}))
    for name in ("date_from", "date_to"):
        raw = text(name)
        if raw:
            try:
                values[name] = date.fromisoformat(raw)
            except ValueError:
                problems.append(f"{QUERY_NAMES[name]}: {raw!r} is not a date (YYYY-MM-DD)")
    rounds = []
    for raw in _list(text("rounds")):
        if raw.isdigit() and int(raw) > 0:
            rounds.append(int(raw))
        else:
            problems.append(f"round: {raw!r} is not a round number")
    values["rounds"] = tuple(sorted(set(rounds)))
    for name, known in (
        ("sex", _codes("sex")),
        ("age_group", set(AGE_GROUPS)),
        ("return_type", _codes("return_type")),
    ):
        wanted = [v.lower() for v in _list(text(name))]
        for bad in [v for v in wanted if v not in known]:
            problems.append(
                f"{QUERY_NAMES[name]}: {bad!r} is not one of {', '.join(sorted(known))}"
            )
        values[name] = tuple(sorted({v for v in wanted if v in known}))
    version = text("index_version")
    if version:
        if _VERSION.match(version):
            values["index_version"] = version
        else:
            problems.append("index: not an index version label")
    exclude = text("exclude_flagged").strip().lower()
    if exclude == FLAGGED:
        values["exclude_flagged"] = True
    elif exclude:
        problems.append(f"exclude: {exclude!r} is not {FLAGGED!r} (flagged enumerators)")
    return FilterState(**values), problems


def encode_query(state: FilterState, extra: Mapping[str, str | None] | None = None) -> str:
    """The query string of a state (with page-specific ``extra`` parts), ``""`` when empty.

    Examples
    --------
    >>> encode_query(FilterState(countries=("GIN", "SEN"), rounds=(1,)), {"by": "sex"})
    '?country=GIN,SEN&round=1&by=sex'
    """
    parts = []
    for f in fields(FilterState):
        value = getattr(state, f.name)
        if value in (None, ()) or value is False:
            continue
        if value is True:
            value = FLAGGED
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        parts.append(f"{QUERY_NAMES[f.name]}={quote(str(value), safe=',-.')}")
    for name, value in (extra or {}).items():
        if value:
            parts.append(f"{name}={quote(str(value), safe=',-.')}")
    return "?" + "&".join(parts) if parts else ""


def scoped(state: FilterState, user: User) -> Filters:
    """The analytics filters of ``state`` within the countries ``user`` may see.

    Examples
    --------
    >>> from reintegration.roles import Role
    >>> user = User("m", Role.MANAGER, frozenset({"SEN"}))
    >>> sorted(scoped(FilterState(countries=("GIN", "SEN")), user).countries)
    ['SEN']
    >>> scoped(FilterState(countries=("GIN",)), user).countries
    frozenset()
    """
    countries: frozenset[str] | None = frozenset(state.countries) or None
    if user.countries is not None:
        countries = user.countries if countries is None else countries & user.countries

    def maybe(values: Sequence[Any]) -> frozenset[Any] | None:
        return frozenset(values) or None

    return Filters(
        countries=countries,
        date_from=state.date_from,
        date_to=state.date_to,
        rounds=maybe(state.rounds),
        sex=maybe(state.sex),
        age_group=maybe(state.age_group),
        return_type=maybe(state.return_type),
        exclude_flagged_enumerators=state.exclude_flagged,
    )


# -- the controls ---------------------------------------------------------------------------

CONTROLS = (
    ("country", "value"),
    ("period", "start_date"),
    ("period", "end_date"),
    ("round", "value"),
    ("sex", "value"),
    ("age", "value"),
    ("return", "value"),
    ("index", "value"),
    ("exclude", "value"),
)


def filter_inputs(page: str) -> list[Input]:
    """The callback inputs of a page's filter bar, in the order :func:`state_from_values` reads."""
    return [Input(f"{page}-{name}-filter", prop) for name, prop in CONTROLS]


def state_from_values(values: Sequence[Any]) -> FilterState:
    """The state the filter controls hold (values in :data:`CONTROLS` order; the ones left
    off the end are empty)."""
    padded = [*values, *[None] * (len(CONTROLS) - len(values))]
    country, start, end, rounds, sex, age, return_type, index_version, exclude = padded

    def many(value: Any) -> tuple[Any, ...]:
        if not value:
            return ()
        return tuple(sorted(set(value if isinstance(value, list) else [value])))

    def day(value: Any) -> date | None:
        try:
            return date.fromisoformat(str(value)[:10]) if value else None
        except ValueError:
            return None

    return FilterState(
        countries=many(country),
        date_from=day(start),
        date_to=day(end),
        rounds=tuple(int(r) for r in many(rounds)),
        sex=many(sex),
        age_group=many(age),
        return_type=many(return_type),
        index_version=index_version or None,
        exclude_flagged=FLAGGED in (exclude or ()),
    )


@dataclass(frozen=True)
class FilterOptions:
    """What the controls offer: countries and rounds present, index versions stored."""

    countries: tuple[str, ...]
    rounds: tuple[int, ...]
    index_versions: tuple[str, ...]


def _labelled(values: Sequence[Any], label: Any) -> list[dict[str, Any]]:
    return [{"label": label(v), "value": v} for v in values]


def filter_bar(page: str, state: FilterState, options: FilterOptions) -> html.Div:
    """The filter controls of an aggregate page, holding ``state``."""
    labels = value_labels()

    def control(name: str, title: str, component: Any) -> html.Div:
        return html.Div(
            className="filter",
            children=[html.Label(title, htmlFor=f"{page}-{name}-filter"), component],
        )

    def dropdown(name: str, title: str, items: list[dict[str, Any]], value: Any) -> html.Div:
        return control(
            name,
            title,
            dcc.Dropdown(
                id=f"{page}-{name}-filter",
                options=items,
                value=list(value),
                multi=True,
                placeholder="All",
            ),
        )

    return html.Div(
        className="filter-bar",
        children=[
            dropdown(
                "country", "Country", _labelled(options.countries, country_label), state.countries
            ),
            control(
                "period",
                "Interview dates",
                dcc.DatePickerRange(
                    id=f"{page}-period-filter",
                    start_date=state.date_from,
                    end_date=state.date_to,
                    display_format="YYYY-MM-DD",
                    clearable=True,
                    start_date_placeholder_text="From",
                    end_date_placeholder_text="To",
                ),
            ),
            dropdown("round", "Round", _labelled(options.rounds, str), state.rounds),
            dropdown(
                "sex", "Sex", _labelled([c for c, _ in choices("sex")], labels.get), state.sex
            ),
            dropdown("age", "Age group", _labelled(AGE_GROUPS, labels.get), state.age_group),
            dropdown(
                "return",
                "Return type",
                _labelled([c for c, _ in choices("return_type")], labels.get),
                state.return_type,
            ),
            control(
                "index",
                "Index version",
                dcc.Dropdown(
                    id=f"{page}-index-filter",
                    options=_labelled(options.index_versions, str),
                    value=state.index_version,
                    clearable=False,
                ),
            ),
            control(
                "exclude",
                "Enumerators",
                dcc.Checklist(
                    id=f"{page}-exclude-filter",
                    options=[{"label": "Leave out flagged enumerators", "value": FLAGGED}],
                    value=[FLAGGED] if state.exclude_flagged else [],
                ),
            ),
        ],
    )


def with_version(state: FilterState, version: str | None) -> FilterState:
    """``state`` showing ``version``."""
    return replace(state, index_version=version)


def problems_note(page: str, problems: Sequence[str]) -> html.Div:
    """A note listing the parts of the address that were ignored (empty when none)."""
    if not problems:
        return html.Div(id=f"{page}-query-problems")
    return html.Div(
        id=f"{page}-query-problems",
        className="notice notice-warning",
        children=[html.Strong("Ignored in the address: "), "; ".join(problems)],
    )
