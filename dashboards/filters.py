"""The filters of the aggregate pages: read from the URL's query, drawn as controls, written back
to the URL when they change, and turned into ``reintegration.analytics.Filters`` within the
user's countries.

The query names are short and readable, so a shared link says what it shows:
``?country=GIN,SEN&from=2025-01-01&to=2025-06-30&round=1,2&sex=female&age=child&return=forced
&index=rss-v1-provisional&exclude=flagged`` (``exclude=flagged``: leave out the enumerators the
data-quality check flags).

The period picker opens on the month of the latest interview the user may see (not today's:
field data arrive weeks late, and a calendar opening on an empty month hides the data), and
offers presets counted back from that latest interview, in whole calendar months so they mean
the same for exact and protected figures (:func:`preset_period`): the quarter holding it, the
twelve months ending with its month, its calendar year.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any
from urllib.parse import quote

import dash
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboards.access import guarded
from dashboards.labels import choices, country_label, value_labels
from reintegration.analytics import Filters
from reintegration.i18n import _
from reintegration.roles import Capability
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
    return {code for code, _label in choices(field)}


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
        problems.append(_("country: {value} is not a three-letter country code", value=repr(bad)))
    values["countries"] = tuple(sorted({c for c in countries if _COUNTRY.match(c)}))
    for name in ("date_from", "date_to"):
        raw = text(name)
        if raw:
            try:
                values[name] = date.fromisoformat(raw)
            except ValueError:
                problems.append(
                    _(
                        "{name}: {value} is not a date (YYYY-MM-DD)",
                        name=QUERY_NAMES[name],
                        value=repr(raw),
                    )
                )
    rounds = []
    for raw in _list(text("rounds")):
        if raw.isdigit() and int(raw) > 0:
            rounds.append(int(raw))
        else:
            problems.append(_("round: {value} is not a round number", value=repr(raw)))
    values["rounds"] = tuple(sorted(set(rounds)))
    for name, known in (
        ("sex", _codes("sex")),
        ("age_group", set(AGE_GROUPS)),
        ("return_type", _codes("return_type")),
    ):
        wanted = [v.lower() for v in _list(text(name))]
        for bad in [v for v in wanted if v not in known]:
            problems.append(
                _(
                    "{name}: {value} is not one of {allowed}",
                    name=QUERY_NAMES[name],
                    value=repr(bad),
                    allowed=", ".join(sorted(known)),
                )
            )
        values[name] = tuple(sorted({v for v in wanted if v in known}))
    version = text("index_version")
    if version:
        if _VERSION.match(version):
            values["index_version"] = version
        else:
            problems.append(_("index: not an index version label"))
    exclude = text("exclude_flagged").strip().lower()
    if exclude == FLAGGED:
        values["exclude_flagged"] = True
    elif exclude:
        problems.append(
            _(
                "exclude: {value} is not {flagged} (flagged enumerators)",
                value=repr(exclude),
                flagged=repr(FLAGGED),
            )
        )
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
    """What the controls offer: countries and rounds present, index versions stored, and the
    interview dates the user's data spans (None when nothing is stored)."""

    countries: tuple[str, ...]
    rounds: tuple[int, ...]
    index_versions: tuple[str, ...]
    first_day: date | None = None
    last_day: date | None = None


PRESETS = ("quarter", "year", "calendar")
"""The period presets, as the ids of their buttons end (``{page}-period-quarter``...)."""


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def preset_period(preset: str, latest: date) -> tuple[date, date]:
    """The dates a period preset sets, counted back from the ``latest`` interview.

    ``quarter``: the calendar quarter holding it; ``year``: the twelve months ending with its
    month; ``calendar``: its calendar year.

    Examples
    --------
    >>> day = date(2025, 5, 14)
    >>> [d.isoformat() for d in preset_period("quarter", day)]
    ['2025-04-01', '2025-06-30']
    >>> [d.isoformat() for d in preset_period("year", day)]
    ['2024-06-01', '2025-05-31']
    >>> [d.isoformat() for d in preset_period("calendar", day)]
    ['2025-01-01', '2025-12-31']
    """
    if preset == "quarter":
        first = 3 * ((latest.month - 1) // 3) + 1
        return date(latest.year, first, 1), _month_end(latest.year, first + 2)
    if preset == "year":
        months = latest.year * 12 + latest.month - 1 - 11
        return date(months // 12, months % 12 + 1, 1), _month_end(latest.year, latest.month)
    if preset == "calendar":
        return date(latest.year, 1, 1), date(latest.year, 12, 31)
    raise ValueError(f"unknown period preset {preset!r}")


def _preset_labels() -> dict[str, str]:
    return {
        "quarter": _("Last quarter"),
        "year": _("Last 12 months"),
        "calendar": _("This year"),
    }


def period_control(page: str, state: FilterState, options: FilterOptions) -> list[Any]:
    """The period picker, opening on the data's latest month, with its preset buttons."""
    opens_on = state.date_to or state.date_from or options.last_day
    latest = options.last_day
    presets: list[Any] = []
    if latest is not None:
        presets = [
            html.Div(
                className="period-presets",
                title=_(
                    "Counted back from the latest interview you may see ({day})",
                    day=latest.isoformat(),
                ),
                children=[
                    html.Button(
                        label,
                        id=f"{page}-period-{preset}",
                        n_clicks=0,
                        type="button",
                        className="period-preset",
                    )
                    for preset, label in _preset_labels().items()
                ],
            )
        ]
    return [
        dcc.DatePickerRange(
            id=f"{page}-period-filter",
            start_date=state.date_from,
            end_date=state.date_to,
            initial_visible_month=opens_on,
            display_format="YYYY-MM-DD",
            clearable=True,
            start_date_placeholder_text=_("From"),
            end_date_placeholder_text=_("To"),
        ),
        dcc.Store(id=f"{page}-period-latest", data=latest.isoformat() if latest else None),
        *presets,
    ]


def register_period_presets(app: dash.Dash, page: str) -> None:
    """The callback of a page's period presets: a button sets the picker's two dates."""

    @app.callback(
        Output(f"{page}-period-filter", "start_date", allow_duplicate=True),
        Output(f"{page}-period-filter", "end_date", allow_duplicate=True),
        *(Input(f"{page}-period-{preset}", "n_clicks") for preset in PRESETS),
        State(f"{page}-period-latest", "data"),
        prevent_initial_call=True,
    )
    @guarded(Capability.AGGREGATES)
    def preset(user: User, *values: Any) -> tuple[str, str]:
        *clicks, latest = values
        chosen = str(ctx.triggered_id or "").removeprefix(f"{page}-period-")
        if chosen not in PRESETS or not latest or not any(clicks):
            raise PreventUpdate
        try:
            start, end = preset_period(chosen, date.fromisoformat(str(latest)))
        except ValueError:
            raise PreventUpdate from None
        return start.isoformat(), end.isoformat()


def _labelled(values: Sequence[Any], label: Any) -> list[dict[str, Any]]:
    return [{"label": label(v), "value": v} for v in values]


def filter_bar(page: str, state: FilterState, options: FilterOptions) -> html.Div:
    """The filter controls of an aggregate page, holding ``state``."""
    labels = value_labels()

    def control(name: str, title: str, *components: Any) -> html.Div:
        return html.Div(
            className=f"filter filter-{name}",
            children=[html.Label(title, htmlFor=f"{page}-{name}-filter"), *components],
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
                placeholder=_("All"),
            ),
        )

    return html.Div(
        className="filter-bar",
        children=[
            dropdown(
                "country",
                _("Country"),
                _labelled(options.countries, country_label),
                state.countries,
            ),
            control("period", _("Interview dates"), *period_control(page, state, options)),
            dropdown("round", _("Round"), _labelled(options.rounds, str), state.rounds),
            dropdown(
                "sex", _("Sex"), _labelled([c for c, _c in choices("sex")], labels.get), state.sex
            ),
            dropdown("age", _("Age group"), _labelled(AGE_GROUPS, labels.get), state.age_group),
            dropdown(
                "return",
                _("Return type"),
                _labelled([c for c, _c in choices("return_type")], labels.get),
                state.return_type,
            ),
            control(
                "index",
                _("Index version"),
                dcc.Dropdown(
                    id=f"{page}-index-filter",
                    options=_labelled(options.index_versions, str),
                    value=state.index_version,
                    clearable=False,
                ),
            ),
            control(
                "exclude",
                _("Enumerators"),
                dcc.Checklist(
                    id=f"{page}-exclude-filter",
                    options=[{"label": _("Leave out flagged enumerators"), "value": FLAGGED}],
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
        children=[html.Strong(_("Ignored in the address:") + " "), "; ".join(problems)],
    )
