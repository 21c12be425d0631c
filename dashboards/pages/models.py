"""Models: versions with champion and challenger, headline and subgroup metrics, the calibration
plot, drift per item, the index weights of each version, the model card, the index
promotions under way (their rescoring job's progress, polled every few seconds), and the
analysts' actions (:mod:`dashboards.model_actions`): train, compare two versions, and promote
after a preview of what would change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import data, model_actions, model_data
from dashboards.access import guarded, page_layout
from dashboards.auth import services
from dashboards.components import figure_card, headline, table, url_sync
from dashboards.figures.common import empty_figure
from dashboards.figures.models import calibration_figure, drift_figure, subgroup_figure
from dashboards.filters import FilterState
from dashboards.labels import item_labels
from reintegration.i18n import _, format_decimal, format_percent
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
KINDS = ("risk", "index")
HEADLINE_METRICS = ("roc_auc", "average_precision", "brier", "baseline_roc_auc")
SUBGROUP_METRIC = "roc_auc"
FIGURES = ("calibration", "subgroups", "drift")
PROMOTIONS_SHOWN = 3
PROMOTIONS_POLL_MS = 3000


def _kinds() -> dict[str, str]:
    return {"risk": _("Early-warning risk model"), "index": _("Reintegration index")}


def _version_columns() -> tuple[tuple[str, str], ...]:
    return (
        ("version", _("Version")),
        ("label", _("Label")),
        ("aliases", _("Aliases")),
        ("created", _("Registered (UTC)")),
        ("headline", _("Headline")),
        ("description", _("Description")),
    )


def _weight_columns() -> tuple[tuple[str, str], ...]:
    return (
        ("dimension", _("Dimension")),
        ("dimension_weight", _("Dimension weight")),
        ("item", _("Item")),
        ("question", _("Question")),
        ("share", _("Share of its dimension")),
    )


def _name(kind: str) -> str:
    risk, index = model_data.model_names()
    return risk if kind == "risk" else index


def version_options(kind: str, user: User) -> tuple[list[dict[str, Any]], int | None]:
    """The version picker's options (newest first) and its default (the champion)."""
    found = model_data.versions(_name(kind), user)
    options = [
        {
            "label": f"v{v['version']}"
            + (f" · {v['label']}" if v.get("label") else "")
            + (f" · {model_data.alias_names(v.get('aliases'))}" if v.get("aliases") else ""),
            "value": int(v["version"]),
        }
        for v in found
    ]
    champion = next((int(v["version"]) for v in found if "champion" in v.get("aliases", [])), None)
    default = champion if champion is not None else (options[0]["value"] if options else None)
    return options, default


@page_layout(__name__)
def layout(user: User, model: str | None = None, version: str | None = None, **__: str) -> html.Div:
    kind = model if model in KINDS else "risk"
    options, default = version_options(kind, user)
    wanted = int(version) if version and version.isdigit() else None
    chosen = wanted if wanted in {o["value"] for o in options} else default
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1(_("Models")),
            html.P(
                _(
                    "Registered versions of the early-warning risk model and of the index, "
                    "with the champion (in use) and the challenger (trained, awaiting "
                    "promotion). Metrics are on held-out returnees; groups too small to judge "
                    "say so."
                )
                + " "
                + _(
                    "Groups with fewer than {min_cell} returnees are not listed, and numbers of "
                    "returnees are rounded to a multiple of {min_cell}, so that no group can be "
                    "worked out from the others.",
                    min_cell=data.min_cell(),
                ),
                className="intro",
            ),
            dcc.Store(id=f"{PAGE}-query"),
            html.Div(
                className="page-controls",
                children=[
                    html.Div(
                        className="filter",
                        children=[
                            html.Label(_("Model"), htmlFor=f"{PAGE}-model-control"),
                            dcc.RadioItems(
                                id=f"{PAGE}-model-control",
                                options=[{"label": v, "value": k} for k, v in _kinds().items()],
                                value=kind,
                                inline=True,
                            ),
                        ],
                    ),
                    html.Div(
                        className="filter",
                        children=[
                            html.Label(_("Version"), htmlFor=f"{PAGE}-version-control"),
                            dcc.Dropdown(
                                id=f"{PAGE}-version-control",
                                options=options,
                                value=chosen,
                                clearable=False,
                                placeholder=_("No version registered"),
                            ),
                        ],
                    ),
                ],
            ),
            table(f"{PAGE}-versions-table", [], _version_columns(), page_size=8),
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
                    html.H2(_("Index weights of this version")),
                    table(f"{PAGE}-weights-table", [], _weight_columns(), page_size=30),
                ],
            ),
            model_actions.promote_section(),
            model_actions.compare_section(options),
            model_actions.train_section(),
            html.H2(_("Model card")),
            dcc.Markdown(id=f"{PAGE}-card", className="markdown-card"),
            html.Section(
                className="section",
                children=[
                    html.H2(_("Index promotions")),
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
    states = {
        "queued": _("queued"),
        "running": _("running"),
        "done": _("done"),
        "failed": _("failed"),
    }
    said = {
        "queued": _("waiting to start; figures use the current champion"),
        "running": _("figures keep using the previous champion until every interview is rescored"),
        "done": _("champion since then"),
        "failed": _("the previous champion stays in use"),
    }.get(status, "")
    progress = float(job.get("progress") or 0.0)
    return html.Div(
        className=f"promotion promotion-{status}",
        children=[
            html.P(
                [
                    html.Strong(f"{what} · {states.get(status, status)}"),
                    " · " + _("by {actor}", actor=job.get("actor")) + f" · {said}",
                ]
            ),
            html.Progress(value=str(progress), max="1", title=format_percent(progress)),
            html.P(str(job.get("message") or ""), className="promotion-message"),
        ],
    )


def _promotions(user: User) -> list[Any]:
    from models.jobs import RESCORE

    jobs = [j for j in services().lifecycle.list_jobs(caller=user) if j.get("kind") == RESCORE]
    if not jobs:
        return [
            html.P(
                _(
                    "No index promotion yet. Promoting an index version (above, `reintegration "
                    "models promote index VERSION --reason TEXT`, or the API) rescores every "
                    "stored interview in the background; its progress shows here."
                ),
                id=f"{PAGE}-no-promotion",
            )
        ]
    return [_promotion(job) for job in jobs[:PROMOTIONS_SHOWN]]


def version_rows(kind: str, user: User) -> list[dict[str, Any]]:
    """The versions table's rows of a model (newest first)."""
    rows = []
    for v in model_data.versions(_name(kind), user):
        metrics = v.get("metrics") or {}
        if kind == "risk" and metrics.get("roc_auc") is not None:
            headline_text = f"ROC AUC {format_decimal(metrics['roc_auc'], 3)}"
        else:
            headline_text = ", ".join(
                f"{k} {format_decimal(val, 3)}" for k, val in list(metrics.items())[:2]
            )
        created = v.get("created_at")
        rows.append(
            {
                "version": v["version"],
                "label": v.get("label") or "",
                "aliases": model_data.alias_names(v.get("aliases")),
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
        options, default = version_options(kind, user)
        keep = current if current in {o["value"] for o in options} else default
        return options, keep, version_rows(kind, user)

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
            message = _(
                "No version of {name} is registered yet: train one with "
                "`reintegration train {kind}`.",
                name=view["name"],
                kind=kind,
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
                _("Version"),
                f"v{found['version']}",
                model_data.alias_names(found.get("aliases")) or _("no alias"),
            ),
            *(
                headline(
                    model_actions.metric_name(key),
                    format_decimal(metrics[key], 3),
                    _("held-out returnees"),
                )
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
                "share": "" if pd.isna(row["share"]) else format_percent(row["share"], 1),
                "dimension_weight": ""
                if row["dimension_weight"] is None
                else format_decimal(row["dimension_weight"], 3),
            }
            for row in weights.to_dict("records")
        ]
        card = model_data.card(view["name"], int(found["version"]), user) or _(
            "This version has no model card."
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
    def promotions(user: User, _tick: int | None) -> list[Any]:
        return _promotions(user)

    for name in FIGURES:
        _register_download(app, name)
    model_actions.register_callbacks(app)


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
