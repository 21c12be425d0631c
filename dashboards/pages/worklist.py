"""Worklist (row-level): returnees at highest risk of not reintegrating sustainably, with their
weakest dimension and the items behind it; filterable, exportable (the export is audited)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import data, rows
from dashboards.access import guarded, page_layout
from dashboards.components import table, url_sync
from dashboards.filters import AGE_GROUPS, FilterState, encode_query, parse_query, problems_note
from dashboards.labels import choices, country_label, item_labels, value_labels
from reintegration.baseline_worklist import BASELINE_NOTE, BASELINE_TARGET
from reintegration.people_csv import csv_text
from reintegration.roles import Capability
from reintegration.users import User

dash.register_page(
    __name__,
    path="/worklist",
    name="Worklist",
    title="Worklist · Reintegration",
    order=5,
    capability=Capability.ROW_LEVEL,
)

PAGE = "worklist"
BANDS = ("high", "medium", "low")
KEY_SHOWN = 12  # the table shows the key's start; the export has it whole
COLUMNS = (
    ("rank", "Rank"),
    ("key", "Returnee key"),
    ("country", "Country"),
    ("sex", "Sex"),
    ("age_group", "Age group"),
    ("return_type", "Return type"),
    ("interview_date", "First survey"),
    ("risk", "Risk"),
    ("band", "Band"),
    ("weakest_dimension", "Weakest dimension"),
    ("reasons", "Why (lowest-scoring items)"),
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
                placeholder="All",
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
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1("Worklist"),
            html.P(
                "Returnees ranked by the risk model's probability that their reintegration is "
                "not sustainable, from their first survey, with their weakest dimension and the "
                "items behind it; until a risk model beats the baseline rule and is promoted, "
                "ranked by the baseline rule (1 − first-survey composite). A prompt for "
                "follow-up, not a judgement of anyone. Returnees are known by their "
                "pseudonymous key only.",
                className="intro",
            ),
            html.Div(
                className="filter-bar",
                children=[
                    html.Div(
                        className="filter",
                        children=[
                            html.Label("Countries (codes)", htmlFor=f"{PAGE}-country-filter"),
                            dcc.Dropdown(
                                id=f"{PAGE}-country-filter",
                                options=[
                                    {"label": country_label(c), "value": c}
                                    for c in sorted(set(countries) | set(state.countries))
                                ],
                                value=list(state.countries),
                                multi=True,
                                placeholder="All",
                                searchable=True,
                            ),
                        ],
                    ),
                    _dropdown("sex", "Sex", choices("sex"), state.sex),
                    _dropdown(
                        "age", "Age group", [(a, labels[a]) for a in AGE_GROUPS], state.age_group
                    ),
                    _dropdown("return", "Return type", choices("return_type"), state.return_type),
                    _dropdown("band", "Risk band", [(b, b.capitalize()) for b in BANDS], bands),
                ],
            ),
            problems_note(PAGE, problems),
            dcc.Store(id=f"{PAGE}-query"),
            html.P(id=f"{PAGE}-summary", className="muted"),
            html.Div(
                className="card-actions",
                children=[
                    html.Button(
                        "Export (CSV)",
                        id=f"{PAGE}-csv-button",
                        className="button-secondary",
                        n_clicks=0,
                    ),
                    dcc.Download(id=f"{PAGE}-csv"),
                ],
            ),
            table(
                f"{PAGE}-table",
                [],
                COLUMNS,
                page_size=25,
                filter_action="native",
                # The reasons are sentences: give them the room, the codes need little.
                style_cell_conditional=[
                    {"if": {"column_id": "reasons"}, "minWidth": "440px", "width": "40%"}
                ],
            ),
        ],
    )


INPUTS = ("country", "sex", "age", "return", "band")


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


def _display(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = value_labels()
    short = item_labels()
    out = []
    for rank, item in enumerate(items, start=1):
        out.append(
            {
                "rank": rank,
                "key": item["key"][:KEY_SHOWN] + "…",
                "country": item["country"],
                "sex": labels.get(item["sex"], item["sex"]),
                "age_group": labels.get(item["age_group"] or "", item["age_group"]),
                "return_type": labels.get(item["return_type"], item["return_type"]),
                "interview_date": str(item["interview_date"]),
                "risk": f"{item['probability']:.1%}",
                "band": item["band"],
                "weakest_dimension": item["weakest_dimension"],
                "reasons": "; ".join(
                    short.get(r["item"], r["question"] or r["item"]) for r in item["reasons"]
                ),
            }
        )
    return out


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-table", "data"),
        Output(f"{PAGE}-summary", "children"),
        Output(f"{PAGE}-query", "data"),
        *(Input(f"{PAGE}-{name}-filter", "value") for name in INPUTS),
    )
    @guarded(Capability.ROW_LEVEL)
    def update(user: User, *values: Any) -> tuple[Any, ...]:
        chosen, query = _chosen(values)
        champion, items = rows.worklist(user, chosen)
        ranked_by = (
            BASELINE_NOTE if champion is None else f"ranked by {champion[0]} version {champion[1]}"
        )
        summary = (
            f"{len(items):,} returnees shown (the {rows.WORKLIST_ROWS:,} at highest risk at most), "
            f"{ranked_by}."
        )
        return _display(items), summary, query

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
        champion, items = rows.worklist(user, chosen, limit=rows.EXPORT_ROWS)
        version = champion[1] if champion is not None else BASELINE_TARGET
        rows.record_export(
            user,
            "worklist",
            {"model_version": version, "rows": len(items), "filters": query},
        )
        lines: list[list[Any]] = [[key for key, _ in COLUMNS] + ["probability", "model_version"]]
        for shown, item in zip(_display(items), items, strict=True):
            shown = {**shown, "key": item["key"]}
            lines.append(
                [str(shown[key]) for key, _ in COLUMNS] + [f"{item['probability']:.4f}", version]
            )
        name = "baseline-rule" if champion is None else f"{champion[0]}-v{champion[1]}"
        return dcc.send_string(csv_text(lines), f"worklist-{name}.csv")
