"""What the models page shows of a promotion's preview (:func:`models.preview.preview_promotion`):
an index version's means and share sustainable before and after, overall and by group, as a
sentence, a table and a figure; a risk model's worklist bands before and after and the gate's
verdict. Pure: answers in, Dash components out (in the reader's language)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import dcc, html

from dashboards.components import table
from dashboards.figures.models import preview_figure
from dashboards.labels import country_label, dimension_labels, value_labels
from reintegration.i18n import _, format_decimal, format_integer, format_percent

PAGE = "models"
BANDS = ("low", "medium", "high", "not_ranked")


def metric_name(key: str) -> str:
    """A model metric's name in the reader's language (``roc_auc``: ROC AUC)."""
    names = {
        "roc_auc": _("ROC AUC"),
        "average_precision": _("Average precision"),
        "brier": _("Brier score"),
        "baseline_roc_auc": _("Baseline ROC AUC"),
    }
    return names.get(key, key.replace("_", " "))


def metric_cell(value: Any) -> str:
    """A metric to three decimals in the reader's language; text as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    return format_decimal(value, 3)


def _group_label(row: dict[str, Any]) -> str:
    if row["by"] is None:
        return _("Overall")
    names = {
        "sex": _("Sex"),
        "age_group": _("Child or adult"),
        "return_type": _("Return type"),
        "country": _("Country"),
    }
    value = str(row["value"])
    shown = country_label(value) if row["by"] == "country" else value_labels().get(value, value)
    if value == "not recorded":
        shown = _("not recorded")
    return f"{names.get(row['by'], row['by'])}: {shown}"


def _signed(value: float | None, share: bool) -> str:
    if value is None:
        return ""
    text = format_percent(abs(value), 1) if share else format_decimal(abs(value), 3)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def _move(row: dict[str, Any], measure: str, share: bool) -> str:
    a, b = row.get(f"{measure}_before"), row.get(f"{measure}_after")
    if a is None or b is None:
        return ""

    def shown(v: float) -> str:
        return format_percent(v, 1) if share else format_decimal(v, 3)

    return _(
        "{before} → {after} ({change})",
        before=shown(a),
        after=shown(b),
        change=_signed(row.get(f"{measure}_change"), share),
    )


def _index_preview(found: dict[str, Any]) -> list[Any]:
    preview = found["preview"]
    rows = preview.get("rows") or []
    before, after = str(preview.get("champion_label")), str(preview.get("label"))
    if not rows:
        return [html.P(_("Too few returnees are scored to show what would change."))]
    dimensions = dimension_labels()
    measures = [m for m in preview["measures"] if m != "composite"]
    overall = rows[0]
    sentence = _(
        "Promoting {label} in place of {champion} would move the share sustainable from "
        "{before} to {after} ({change}) and the mean composite from {composite_before} to "
        "{composite_after}, over {n} returnees (their latest interview).",
        label=after,
        champion=before,
        before=format_percent(overall["sustainable_before"], 1),
        after=format_percent(overall["sustainable_after"], 1),
        change=_signed(overall["sustainable_change"], True),
        composite_before=format_decimal(overall["composite_before"], 3),
        composite_after=format_decimal(overall["composite_after"], 3),
        n=format_integer(overall["n"]),
    )
    columns = [
        ("group", _("Group")),
        ("n", _("Returnees")),
        ("sustainable", _("Share sustainable")),
        ("composite", _("Composite (mean)")),
        *((m, _("{dimension} (mean)", dimension=dimensions.get(m, m))) for m in measures),
    ]
    table_rows = [
        {
            "group": _group_label(row),
            "n": format_integer(row["n"]),
            "sustainable": _move(row, "sustainable", True),
            "composite": _move(row, "composite", False),
            **{m: _move(row, m, False) for m in measures},
        }
        for row in rows
    ]
    frame = pd.DataFrame(rows).assign(label=[_group_label(r) for r in rows])
    figure = preview_figure(
        frame,
        measure="sustainable",
        title=_("Share sustainable before and after the promotion"),
        before=before,
        after=after,
        index_version=before,
        share=True,
    )
    notes = [found.get("reverse_keyed_text")] if found.get("reverse_keyed_text") else []
    return [
        html.P(sentence, id=f"{PAGE}-promote-sentence", className="lead"),
        table(f"{PAGE}-promote-table", table_rows, columns, page_size=40),
        dcc.Graph(id=f"{PAGE}-promote-graph", figure=figure, config={"displaylogo": False}),
        *(html.P(str(n), className="muted") for n in notes),
        html.P(
            _(
                "Confirming rescores every stored interview in the background; figures switch "
                "to the new version only when all are rescored. A reason is required."
            ),
            className="muted",
        ),
    ]


def _risk_preview(found: dict[str, Any]) -> list[Any]:
    preview = found["preview"]
    rows = preview.get("bands") or []
    basis = (
        _("the baseline rule")
        if preview.get("bands_basis") == "baseline rule"
        else _("the champion (version {version})", version=found.get("previous"))
    )
    band_names = {
        "low": _("Low"),
        "medium": _("Medium"),
        "high": _("High"),
        "not_ranked": _("Not ranked"),
    }
    children: list[Any] = [
        html.P(
            _(
                "The worklist's risk bands of the stored first surveys, as {basis} puts them "
                "and as version {version} would.",
                basis=basis,
                version=found["version"],
            ),
            id=f"{PAGE}-promote-sentence",
            className="lead",
        )
    ]
    if rows:
        columns = [("group", _("Group")), ("n", _("Returnees"))] + [
            (band, band_names[band]) for band in BANDS
        ]
        children.append(
            table(
                f"{PAGE}-promote-table",
                [
                    {
                        "group": _group_label(row),
                        "n": format_integer(row["n"]),
                        **{
                            band: _(
                                "{before} → {after} ({change})",
                                before=format_integer(row[f"{band}_before"] or 0),
                                after=format_integer(row[f"{band}_after"] or 0),
                                change=("+" if row[f"{band}_change"] > 0 else "")
                                + format_integer(row[f"{band}_change"]),
                            )
                            for band in BANDS
                        },
                    }
                    for row in rows
                ],
                columns,
                page_size=40,
            )
        )
    gate = [
        {
            "group": str(r["group"]),
            "n": "" if r.get("n") is None else format_integer(r["n"]),
            "champion": metric_cell(r.get("champion")),
            "challenger": metric_cell(r.get("challenger")),
            "change": metric_cell(r.get("change")),
            "refused": _("refused") if r.get("refused") else "",
        }
        for r in found.get("rows") or []
    ]
    if gate:
        children.append(html.H3(_("The gate: ROC AUC against the champion")))
        children.append(
            table(
                f"{PAGE}-promote-gate",
                gate,
                (
                    ("group", _("Group")),
                    ("n", _("Returnees")),
                    ("champion", _("Champion")),
                    ("challenger", _("This version")),
                    ("change", _("Change")),
                    ("refused", _("Verdict")),
                ),
                page_size=40,
            )
        )
    if found.get("refusal"):
        children.append(
            html.P(
                [
                    html.Strong(_("The gate would refuse this version: ")),
                    str(found["refusal"]),
                ],
                id=f"{PAGE}-promote-refusal",
                className="warning",
            )
        )
    else:
        children.append(html.P(_("The gate would accept this version."), className="muted"))
    return children


def preview_view(found: dict[str, Any]) -> list[Any]:
    """The preview of a promotion (``models.preview.preview_promotion``'s answer)."""
    title = html.H3(
        _(
            "What promoting {name} version {version} would change",
            name=found["name"],
            version=found["version"],
        )
    )
    body = _index_preview(found) if found["kind"] == "index" else _risk_preview(found)
    return [title, *body]
