"""Worklist (row-level): returnees ranked by risk of not reintegrating sustainably, ties broken
by the lower first-survey composite then by the longest time since the last survey, each with
the weakest dimension and the items of that dimension behind it, the band (whose range the page
states), the case status and a link to the returnee's page. Paged on the server: the page says
how many returnees match, and the export (audited) holds exactly those."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import casework_data as data_access
from dashboards import data
from dashboards.access import guarded, page_layout
from dashboards.auth import page_url
from dashboards.components import table, url_sync
from dashboards.filters import AGE_GROUPS, FilterState, encode_query, parse_query, problems_note
from dashboards.labels import choices, country_label, dimension_labels, item_labels, value_labels
from reintegration.case_status import STATUSES, status_labels
from reintegration.errors import QueryError
from reintegration.i18n import _, format_date, format_decimal, format_integer, format_percent
from reintegration.people_csv import csv_text
from reintegration.roles import Capability
from reintegration.users import User
from reintegration.worklist import BANDS, RiskBands, RiskSource, WorklistPage

dash.register_page(
    __name__,
    path="/worklist",
    name="Worklist",
    title="Worklist · Reintegration",
    order=5,
    capability=Capability.ROW_LEVEL,
)

PAGE = "worklist"
KEY_SHOWN = 12  # the table shows the key's start; the link and the export have it whole
INPUTS = ("country", "sex", "age", "return", "band")
EXPORT_COLUMNS = (
    "rank",
    "key",
    "country",
    "sex",
    "age_group",
    "return_type",
    "submission_id",
    "interview_date",
    "probability",
    "ranked_risk",
    "band",
    "composite",
    "last_interview_date",
    "days_since_last_survey",
    "weakest_dimension",
    "reasons",
    "status",
    "model_version",
)


def columns() -> list[tuple[str, str]]:
    """The table's columns (id, title in the current language)."""
    return [
        ("rank", _("Rank")),
        ("key", _("Returnee (opens their page)")),
        ("country", _("Country")),
        ("sex", _("Sex")),
        ("age_group", _("Age group")),
        ("return_type", _("Return type")),
        ("interview_date", _("First survey")),
        ("risk", _("Risk")),
        ("band", _("Band")),
        ("composite", _("Composite (first survey)")),
        ("days", _("Days since last survey")),
        ("weakest_dimension", _("Weakest dimension")),
        ("reasons", _("Why (its lowest-scoring items)")),
        ("status", _("Status")),
    ]


def band_names() -> dict[str, str]:
    """Each risk band's name in the current language."""
    return {"low": _("Low"), "medium": _("Medium"), "high": _("High")}


def bands_sentence(bands: RiskBands) -> str:
    """What each band holds, e.g. "Risk bands: low below 30%, medium 30% to under 60%, high 60%
    and above (REINTEGRATION_RISK_BANDS)"."""
    return _(
        "Risk bands: low below {medium}, medium from {medium} to under {high}, high from {high} "
        "(the analyst's thresholds, REINTEGRATION_RISK_BANDS).",
        medium=format_percent(bands.medium_from, 1),
        high=format_percent(bands.high_from, 1),
    )


def ranked_by(source: RiskSource) -> str:
    """Which ranking the list shows."""
    if source.model is None:
        return _("ranked by the baseline rule (1 − first-survey composite): no promoted risk model")
    return _(
        "ranked by {model} version {version}", model=source.model, version=source.model_version
    )


def summary(page: WorklistPage, page_current: int, page_size: int) -> str:
    """How many returnees match, which of them are shown, and that the export holds them all."""
    if page.total == 0:
        return _("No returnee matches these filters, {ranked}.", ranked=ranked_by(page.source))
    first = page_current * page_size + 1
    last = min(page.total, first + len(page.items) - 1)
    return _(
        "{total} returnees match: showing {first} to {last}, {ranked}. Ties in risk go to the "
        "lower first-survey composite, then to the returnee surveyed longest ago. The export "
        "holds all {total}.",
        total=format_integer(page.total),
        first=format_integer(first),
        last=format_integer(last),
        ranked=ranked_by(page.source),
    )


def _dropdown(name: str, title: str, options: list[tuple[str, str]], value: Any) -> html.Div:
    return html.Div(
        className="filter",
        children=[
            html.Label(title, htmlFor=f"{PAGE}-{name}-filter"),
            dcc.Dropdown(
                id=f"{PAGE}-{name}-filter",
                options=[{"label": label, "value": code} for code, label in options],
                value=list(value),
                multi=True,
                placeholder=_("All"),
            ),
        ],
    )


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    state, problems = parse_query(query)
    bands = [b for b in str(query.get("band") or "").split(",") if b in BANDS]
    labels = value_labels()
    version = data.resolve_version(FilterState()).index_version
    countries = data.filter_options(user, version).countries
    names = band_names()
    grid = table(
        f"{PAGE}-table",
        [],
        columns(),
        page_size=data_access.PAGE_ROWS,
        page_action="custom",
        page_current=0,
        page_count=1,
        sort_action="none",
        # The reasons are sentences: give them the room, the codes need little.
        style_cell_conditional=[
            {"if": {"column_id": "reasons"}, "minWidth": "320px", "width": "30%"},
            {"if": {"column_id": "status"}, "minWidth": "170px"},
        ],
    )
    presented = {
        "key": {"presentation": "markdown"},
        # Analysts and admins set a returnee's status in place; the domain checks the scope.
        "status": {"presentation": "dropdown", "editable": True},
    }
    grid.columns = [{**c, **presented.get(c["id"], {})} for c in grid.columns]
    grid.markdown_options = {"link_target": "_self"}
    grid.dropdown = {
        "status": {
            "options": [{"label": status_labels()[s], "value": s} for s in STATUSES],
            "clearable": False,
        }
    }
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1(_("Worklist")),
            html.P(
                _(
                    "Returnees ranked by the risk model's probability that their reintegration "
                    "is not sustainable, from their first survey, with their weakest dimension "
                    "and the items of that dimension behind it; until a risk model beats the "
                    "baseline rule and is promoted, ranked by the baseline rule (1 − "
                    "first-survey composite). A prompt for follow-up, not a judgement of "
                    "anyone. Returnees are known by their pseudonymous key only: open one to "
                    "see their rounds and record a contact."
                ),
                className="intro",
            ),
            html.Div(
                className="filter-bar",
                children=[
                    html.Div(
                        className="filter",
                        children=[
                            html.Label(_("Countries (codes)"), htmlFor=f"{PAGE}-country-filter"),
                            dcc.Dropdown(
                                id=f"{PAGE}-country-filter",
                                options=[
                                    {"label": country_label(c), "value": c}
                                    for c in sorted(set(countries) | set(state.countries))
                                ],
                                value=list(state.countries),
                                multi=True,
                                placeholder=_("All"),
                                searchable=True,
                            ),
                        ],
                    ),
                    _dropdown("sex", _("Sex"), choices("sex"), state.sex),
                    _dropdown(
                        "age", _("Age group"), [(a, labels[a]) for a in AGE_GROUPS], state.age_group
                    ),
                    _dropdown(
                        "return", _("Return type"), choices("return_type"), state.return_type
                    ),
                    _dropdown("band", _("Risk band"), [(b, names[b]) for b in BANDS[::-1]], bands),
                ],
            ),
            problems_note(PAGE, problems),
            dcc.Store(id=f"{PAGE}-query"),
            html.P(bands_sentence(data_access.bands()), id=f"{PAGE}-bands", className="muted"),
            html.P(id=f"{PAGE}-summary", className="muted"),
            html.P(id=f"{PAGE}-status-message", className="muted", role="status"),
            html.Div(
                className="card-actions",
                children=[
                    html.Button(
                        _("Export all matching returnees (CSV)"),
                        id=f"{PAGE}-csv-button",
                        className="button-secondary",
                        n_clicks=0,
                    ),
                    dcc.Download(id=f"{PAGE}-csv"),
                ],
            ),
            grid,
        ],
    )


def _chosen(values: tuple[Any, ...]) -> tuple[dict[str, Any], str]:
    country, sex, age, return_type, band = (list(v or []) for v in values)
    chosen = {
        "countries": set(country) or None,
        "sex": set(sex) or None,
        "age_group": set(age) or None,
        "return_type": set(return_type) or None,
        "band": {b for b in band if b in BANDS} or None,
    }
    state = FilterState(
        countries=tuple(sorted(country)),
        sex=tuple(sorted(sex)),
        age_group=tuple(sorted(age)),
        return_type=tuple(sorted(return_type)),
    )
    query = encode_query(state, {"band": ",".join(b for b in BANDS if b in band) or None})
    return chosen, query


def _reasons_text(item: dict[str, Any], short: dict[str, str]) -> str:
    return "; ".join(short.get(r["item"], r["question"] or r["item"]) for r in item["reasons"])


def _display(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels, short, dimensions = value_labels(), item_labels(), dimension_labels()
    names = band_names()
    out = []
    for item in items:
        key = item["key"]
        out.append(
            {
                "rank": format_integer(item["rank"]),
                "key": f"[{key[:KEY_SHOWN]}…]({page_url('/returnee')}?key={key})",
                "country": item["country"],
                "sex": labels.get(item["sex"], item["sex"]),
                "age_group": labels.get(item["age_group"] or "", item["age_group"]),
                "return_type": labels.get(item["return_type"], item["return_type"]),
                "interview_date": format_date(item["interview_date"]),
                "risk": format_percent(item["ranked_risk"], 1),
                "band": names.get(item["band"], item["band"]),
                "composite": "–"
                if item["composite"] is None
                else format_decimal(item["composite"], 3),
                "days": "–"
                if item["days_since_last_survey"] is None
                else format_integer(item["days_since_last_survey"]),
                "weakest_dimension": dimensions.get(
                    item["weakest_dimension"] or "", item["weakest_dimension"] or "–"
                ),
                "reasons": _reasons_text(item, short),
                "status": item["status"],
                "returnee_key": key,  # not a column: which returnee a status change is for
            }
        )
    return out


def status_message(user: User, changed: list[tuple[str, str]]) -> str:
    """Record each (key, status) the user chose in the table; a sentence saying what was saved
    (a returnee outside their countries, or a value that is no status, saves nothing)."""
    labels = status_labels()
    saved, refused = [], 0
    for key, status in changed:
        try:
            done = data_access.set_status(user, key, status) if status in STATUSES else None
        except QueryError:
            done = None
        if done is None:
            refused += 1
        else:
            saved.append(_("{key}…: {status}", key=key[:KEY_SHOWN], status=labels[status]))
    text = _("Status saved: {saved}.", saved="; ".join(saved)) if saved else ""
    if refused:
        text = (text + " " if text else "") + _(
            "There is no returnee with this key that you may see."
        )
    return text


def _export_row(item: dict[str, Any], version: str) -> list[str]:
    cells = {
        **item,
        "probability": f"{item['probability']:.6f}",
        "ranked_risk": f"{item['ranked_risk']:.3f}",
        "composite": "" if item["composite"] is None else f"{item['composite']:.4f}",
        "reasons": " ".join(r["item"] for r in item["reasons"]),
        "model_version": version,
    }
    return ["" if cells[c] is None else str(cells[c]) for c in EXPORT_COLUMNS]


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-table", "data"),
        Output(f"{PAGE}-table", "page_count"),
        Output(f"{PAGE}-table", "page_current"),
        Output(f"{PAGE}-summary", "children"),
        Output(f"{PAGE}-query", "data"),
        *(Input(f"{PAGE}-{name}-filter", "value") for name in INPUTS),
        Input(f"{PAGE}-table", "page_current"),
    )
    @guarded(Capability.ROW_LEVEL)
    def update(user: User, *values: Any) -> tuple[Any, ...]:
        *filters, page_current = values
        chosen, query = _chosen(tuple(filters))
        # A new filter starts again from the first page.
        turned = dash.callback_context.triggered_id == f"{PAGE}-table"
        current = int(page_current or 0) if turned else 0
        size = data_access.PAGE_ROWS
        page = data_access.worklist(user, chosen, limit=size, offset=current * size)
        if not page.items and current:
            current = 0
            page = data_access.worklist(user, chosen, limit=size, offset=0)
        pages = max(1, -(-page.total // size))
        return _display(page.items), pages, current, summary(page, current, size), query

    @app.callback(
        Output(f"{PAGE}-status-message", "children"),
        Input(f"{PAGE}-table", "data_timestamp"),
        State(f"{PAGE}-table", "data"),
        State(f"{PAGE}-table", "data_previous"),
        prevent_initial_call=True,
    )
    @guarded(Capability.ROW_LEVEL)
    def set_status(user: User, stamp: Any, shown: Any, previous: Any) -> str:
        if not stamp or not isinstance(shown, list) or not isinstance(previous, list):
            raise PreventUpdate
        before = {r.get("returnee_key"): r.get("status") for r in previous if isinstance(r, dict)}
        changed = [
            (str(r.get("returnee_key")), str(r.get("status")))
            for r in shown
            if isinstance(r, dict)
            and before.get(r.get("returnee_key"), r.get("status")) != r.get("status")
        ]
        if not changed:
            raise PreventUpdate
        return status_message(user, changed)

    @app.callback(
        Output(f"{PAGE}-csv", "data"),
        Input(f"{PAGE}-csv-button", "n_clicks"),
        *(State(f"{PAGE}-{name}-filter", "value") for name in INPUTS),
        prevent_initial_call=True,
    )
    @guarded(Capability.ROW_LEVEL)
    def export(user: User, clicks: int, *values: Any) -> dict[str, Any]:
        if not clicks:
            raise PreventUpdate
        chosen, query = _chosen(values)
        page = data_access.worklist(user, chosen, limit=None)
        source = page.source
        version = str(source.model_version) if source.model else "baseline rule"
        data_access.record_export(
            user,
            "worklist",
            {"model_version": version, "rows": len(page.items), "filters": query},
        )
        lines: list[list[Any]] = [list(EXPORT_COLUMNS)]
        lines.extend(_export_row(item, version) for item in page.items)
        name = (
            "baseline-rule" if source.model is None else f"{source.model}-v{source.model_version}"
        )
        return dcc.send_string(csv_text(lines), f"worklist-{name}.csv")
