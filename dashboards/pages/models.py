"""Models: versions with champion and challenger, headline and subgroup metrics, the calibration
plot, drift per item, the index weights of each version, the model card, and the index
promotions under way (their rescoring job's progress, polled every few seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import data, model_data
from dashboards.access import guarded, page_layout
from dashboards.auth import services
from dashboards.components import figure_card, headline, table, url_sync
from dashboards.figures.common import empty_figure
from dashboards.figures.models import calibration_figure, drift_figure, subgroup_figure
from dashboards.filters import FilterState
from dashboards.labels import item_labels
from reintegration.roles import Capability
from reintegration.users import User

dash.register_page(
    __name__,
    path="/models",
    name="Models",
    title="Models · Reintegration",
    order=6,
    capability=Capability.MODELS,
    every_country=True,
)

PAGE = "models"
KINDS = {"risk": "Early-warning risk model", "index": "Reintegration index"}
HEADLINE_METRICS = ("roc_auc", "average_precision", "brier", "baseline_roc_auc")
VERSION_COLUMNS = (
    ("version", "Version"),
    ("label", "Label"),
    ("aliases", "Aliases"),
    ("created", "Registered (UTC)"),
    ("headline", "Headline"),
    ("description", "Description"),
)
WEIGHT_COLUMNS = (
    ("dimension", "Dimension"),
    ("dimension_weight", "Dimension weight"),
    ("item", "Item"),
    ("question", "Question"),
    ("share", "Share of its dimension"),
)
SUBGROUP_METRIC = "roc_auc"
FIGURES = ("calibration", "subgroups", "drift")
PROMOTIONS_SHOWN = 3
PROMOTIONS_POLL_MS = 3000


def _name(kind: str) -> str:
    risk, index = model_data.model_names()
    return risk if kind == "risk" else index


def _version_options(kind: str, user: User) -> tuple[list[dict[str, Any]], int | None]:
    found = model_data.versions(_name(kind), user)
    options = [
        {
            "label": f"v{v['version']}"
            + (f" · {v['label']}" if v.get("label") else "")
            + (f" · {', '.join(v['aliases'])}" if v.get("aliases") else ""),
            "value": int(v["version"]),
        }
        for v in found
    ]
    champion = next((int(v["version"]) for v in found if "champion" in v.get("aliases", [])), None)
    default = champion if champion is not None else (options[0]["value"] if options else None)
    return options, default


@page_layout(__name__)
def layout(user: User, model: str | None = None, version: str | None = None, **_: str) -> html.Div:
    from models.disclosure_models import rule_sentence

    kind = model if model in KINDS else "risk"
    options, default = _version_options(kind, user)
    wanted = int(version) if version and version.isdigit() else None
    chosen = wanted if wanted in {o["value"] for o in options} else default
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1("Models"),
            html.P(
                "Registered versions of the early-warning risk model and of the index, with "
                "the champion (in use) and the challenger (trained, awaiting promotion). "
                "Metrics are on held-out returnees; groups too small to judge say so. "
                + rule_sentence(data.min_cell()),
                className="intro",
            ),
            dcc.Store(id=f"{PAGE}-query"),
            html.Div(
                className="page-controls",
                children=[
                    html.Div(
                        className="filter",
                        children=[
                            html.Label("Model", htmlFor=f"{PAGE}-model-control"),
                            dcc.RadioItems(
                                id=f"{PAGE}-model-control",
                                options=[{"label": v, "value": k} for k, v in KINDS.items()],
                                value=kind,
                                inline=True,
                            ),
                        ],
                    ),
                    html.Div(
                        className="filter",
                        children=[
                            html.Label("Version", htmlFor=f"{PAGE}-version-control"),
                            dcc.Dropdown(
                                id=f"{PAGE}-version-control",
                                options=options,
                                value=chosen,
                                clearable=False,
                                placeholder="No version registered",
                            ),
                        ],
                    ),
                ],
            ),
            table(f"{PAGE}-versions-table", [], VERSION_COLUMNS, page_size=8),
            html.Div(id=f"{PAGE}-headlines", className="headlines"),
            html.Div(
                className="cards",
                children=[
                    html.Div(figure_card(PAGE, "calibration"), id=f"{PAGE}-calibration-card"),
                    html.Div(figure_card(PAGE, "subgroups"), id=f"{PAGE}-subgroups-card"),
                    figure_card(PAGE, "drift", wide=True),
                ],
            ),
            html.Section(
                className="section",
                id=f"{PAGE}-weights-section",
                children=[
                    html.H2("Index weights of this version"),
                    table(f"{PAGE}-weights-table", [], WEIGHT_COLUMNS, page_size=30),
                ],
            ),
            html.H2("Model card"),
            dcc.Markdown(id=f"{PAGE}-card", className="markdown-card"),
            html.Section(
                className="section",
                children=[
                    html.H2("Index promotions"),
                    html.Div(id=f"{PAGE}-promotions", role="status"),
                    dcc.Interval(id=f"{PAGE}-promotions-poll", interval=PROMOTIONS_POLL_MS),
                ],
            ),
        ],
    )


def _promotion(job: dict[str, Any]) -> html.Div:
    """One index promotion job: version, state, rows rescored, and what it means for figures."""
    params = job.get("params") or {}
    status = str(job.get("status"))
    what = f"{params.get('name', 'rss-index')} v{params.get('version', '?')}"
    said = {
        "queued": "waiting to start; figures use the current champion",
        "running": "figures keep using the previous champion until every interview is rescored",
        "done": "champion since then",
        "failed": "the previous champion stays in use",
    }.get(status, "")
    progress = float(job.get("progress") or 0.0)
    return html.Div(
        className=f"promotion promotion-{status}",
        children=[
            html.P([html.Strong(f"{what} · {status}"), f" · by {job.get('actor')} · {said}"]),
            html.Progress(value=str(progress), max="1", title=f"{progress:.0%}"),
            html.P(str(job.get("message") or ""), className="promotion-message"),
        ],
    )


def _promotions(user: User) -> list[Any]:
    from models.jobs import RESCORE

    jobs = [j for j in services().lifecycle.list_jobs(caller=user) if j.get("kind") == RESCORE]
    if not jobs:
        return [
            html.P(
                "No index promotion yet. Promoting an index version (`reintegration models "
                "promote index VERSION --reason TEXT`, or the API) rescores every stored "
                "interview in the background; its progress shows here.",
                id=f"{PAGE}-no-promotion",
            )
        ]
    return [_promotion(job) for job in jobs[:PROMOTIONS_SHOWN]]


def _version_rows(kind: str, user: User) -> list[dict[str, Any]]:
    rows = []
    for v in model_data.versions(_name(kind), user):
        metrics = v.get("metrics") or {}
        if kind == "risk" and metrics.get("roc_auc") is not None:
            headline_text = f"ROC AUC {metrics['roc_auc']:.3f}"
        else:
            headline_text = ", ".join(f"{k} {val:.3f}" for k, val in list(metrics.items())[:2])
        created = v.get("created_at")
        rows.append(
            {
                "version": v["version"],
                "label": v.get("label") or "",
                "aliases": ", ".join(v.get("aliases") or []),
                "created": datetime.fromtimestamp(created / 1000, UTC).strftime("%Y-%m-%d %H:%M")
                if isinstance(created, int | float)
                else str(created or ""),
                "headline": headline_text,
                "description": v.get("description") or "",
            }
        )
    return rows


def _champion_index(user: User) -> tuple[int | None, str]:
    """The champion index's registry version and label (what drift compares against)."""
    for v in model_data.versions(_name("index"), user):
        if "champion" in (v.get("aliases") or []):
            return int(v["version"]), str(v.get("label") or "")
    label = data.champion_label() or data.resolve_version(FilterState()).index_version or ""
    return None, label


def _subgroups(evaluation: dict[str, Any]) -> pd.DataFrame:
    """Overall and each single subgroup, as published (``model_data`` passes every evaluation
    through ``models.disclosure_models``: no group under min_cell, sizes rounded)."""
    from models.evaluation import OVERALL

    model = evaluation.get("model") or {}
    overall = {"group": OVERALL, "n": model.get("n"), SUBGROUP_METRIC: model.get(SUBGROUP_METRIC)}
    shown = [
        {
            "group": r["group"],
            "n": "" if r.get("n") is None else str(r["n"]),
            SUBGROUP_METRIC: r.get(SUBGROUP_METRIC) if r.get("sufficient", True) else None,
        }
        for r in [overall, *(evaluation.get("subgroups") or [])]
        if " & " not in r["group"]  # intersections are in the card
    ]
    return pd.DataFrame(shown, columns=["group", "n", SUBGROUP_METRIC])


def _view(kind: str, version: int | None, user: User) -> dict[str, Any]:
    """Everything the page shows of one version, as frames and texts (``user`` is checked by
    ``models/`` on every read)."""
    name = _name(kind)
    found = next((v for v in model_data.versions(name, user) if int(v["version"]) == version), None)
    details = model_data.run_details(found.get("run_id") if found else None, user)
    evaluation = details.get("evaluation") or {}
    index_version, index_label = _champion_index(user)
    if kind == "index" and found is not None:
        index_version, index_label = version, str(found.get("label") or index_label)
    return {
        "found": found,
        "evaluation": evaluation,
        "params": details.get("params") or {},
        "calibration": pd.DataFrame(
            evaluation.get("calibration") or [],
            columns=["bin_low", "bin_high", "n", "mean_predicted", "observed"],
        ),
        "subgroups": _subgroups(evaluation)
        if evaluation.get("subgroups")
        else pd.DataFrame(columns=["group", "n", SUBGROUP_METRIC]),
        "drift": model_data.drift(index_version, user),
        "index_label": index_label,
        "name": name,
    }


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-version-control", "options"),
        Output(f"{PAGE}-version-control", "value"),
        Output(f"{PAGE}-versions-table", "data"),
        Input(f"{PAGE}-model-control", "value"),
        State(f"{PAGE}-version-control", "value"),
    )
    @guarded(Capability.MODELS, every_country=True)
    def pick_model(user: User, kind: str, current: int | None) -> tuple[Any, ...]:
        kind = kind if kind in KINDS else "risk"
        options, default = _version_options(kind, user)
        keep = current if current in {o["value"] for o in options} else default
        return options, keep, _version_rows(kind, user)

    @app.callback(
        Output(f"{PAGE}-headlines", "children"),
        Output(f"{PAGE}-calibration-graph", "figure"),
        Output(f"{PAGE}-subgroups-graph", "figure"),
        Output(f"{PAGE}-drift-graph", "figure"),
        Output(f"{PAGE}-calibration-card", "style"),
        Output(f"{PAGE}-subgroups-card", "style"),
        Output(f"{PAGE}-weights-section", "style"),
        Output(f"{PAGE}-weights-table", "data"),
        Output(f"{PAGE}-card", "children"),
        Output(f"{PAGE}-query", "data"),
        Input(f"{PAGE}-version-control", "value"),
        State(f"{PAGE}-model-control", "value"),
    )
    @guarded(Capability.MODELS, every_country=True)
    def show(user: User, version: int | None, kind: str) -> tuple[Any, ...]:
        kind = kind if kind in KINDS else "risk"
        view = _view(kind, version, user)
        query = f"?model={kind}" + (f"&version={version}" if version else "")
        risk_style = {} if kind == "risk" else {"display": "none"}
        index_style = {"display": "none"} if kind == "risk" else {}
        drift = drift_figure(
            view["drift"], index_version=view["index_label"] or "none", labels=item_labels()
        )
        if view["found"] is None:
            message = (
                f"No version of {view['name']} is registered yet: train one with "
                f"`reintegration train {kind}`."
            )
            empty = empty_figure(message, view["index_label"] or "none")
            return (
                [html.P(message, id=f"{PAGE}-none")],
                empty,
                empty,
                drift,
                risk_style,
                risk_style,
                index_style,
                [],
                "",
                query,
            )
        found = view["found"]
        described = f"{view['name']} v{found['version']}"
        metrics = found.get("metrics") or {}
        cards = [
            headline(
                "Version",
                f"v{found['version']}",
                ", ".join(found.get("aliases") or []) or "no alias",
            ),
            *(
                headline(key.replace("_", " "), f"{metrics[key]:.3f}", "held-out returnees")
                for key in HEADLINE_METRICS
                if isinstance(metrics.get(key), int | float)
            ),
        ]
        calibration = calibration_figure(
            view["calibration"], model_version=described, index_version=view["index_label"]
        )
        subgroups = subgroup_figure(
            view["subgroups"],
            metric=SUBGROUP_METRIC,
            model_version=described,
            index_version=view["index_label"],
        )
        weights = model_data.weights(view["params"])
        questions = item_labels()
        weight_rows = [
            {
                **row,
                "question": questions.get(row["item"], ""),
                "share": "" if pd.isna(row["share"]) else f"{row['share']:.1%}",
                "dimension_weight": ""
                if row["dimension_weight"] is None
                else f"{row['dimension_weight']:.3f}",
            }
            for row in weights.to_dict("records")
        ]
        card = (
            model_data.card(view["name"], int(found["version"]), user)
            or "This version has no model card."
        )
        return (
            cards,
            calibration,
            subgroups,
            drift,
            risk_style,
            risk_style,
            index_style,
            weight_rows,
            card,
            query,
        )

    @app.callback(
        Output(f"{PAGE}-promotions", "children"),
        Input(f"{PAGE}-promotions-poll", "n_intervals"),
    )
    @guarded(Capability.MODELS, every_country=True)
    def promotions(user: User, _: int | None) -> list[Any]:
        return _promotions(user)

    for name in FIGURES:
        _register_download(app, name)


def _register_download(app: dash.Dash, name: str) -> None:
    @app.callback(
        Output(f"{PAGE}-{name}-csv", "data"),
        Input(f"{PAGE}-{name}-csv-button", "n_clicks"),
        State(f"{PAGE}-version-control", "value"),
        State(f"{PAGE}-model-control", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.MODELS, every_country=True)
    def download(user: User, clicks: int, version: int | None, kind: str) -> Any:
        if not clicks:
            raise PreventUpdate
        kind = kind if kind in KINDS else "risk"
        view = _view(kind, version, user)
        frame = view[name].assign(
            model=view["name"], model_version=version, index_version=view["index_label"]
        )
        return data.csv_download(frame, f"models-{kind}-v{version}-{name}.csv")
