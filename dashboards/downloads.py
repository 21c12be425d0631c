"""What a chart's downloads carry: its context (filters, index version, date of extraction,
exact or perturbed figures), tidy columns with clear names and sane numbers, as CSV or as an
Excel workbook with a "read me" sheet.

A CSV stays a plain table that any reader opens without options: its context is four
columns at the end, the same on every row (``figures``, ``filters``, ``index_version``,
``extracted_on``); the workbook says the same on its "read me" sheet, with a glossary of the
columns. Column names, codes and numbers in files are never translated (they round-trip);
the read me's sentences are in the user's language.

The frames come from the same data-access functions as the charts (:mod:`dashboards.data`),
so a download shows exactly what the screen may show the user, no more.

>>> frame = pd.DataFrame({"sex": ["female", "all"], "returnees": [291.0, 600.0],
...                       "composite_mean": [0.41234567, 0.5], "composite_low": [0.4, 0.45],
...                       "share_low": [0.169, 0.2]})
>>> list(tidy(frame).columns)
['sex', 'returnees', 'composite_mean', 'composite_mean_lower_95', 'share_level_low']
>>> tidy(frame)["returnees"].tolist(), tidy(frame)["composite_mean"].tolist()
([291, 600], [0.4123, 0.5])
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
from dash import dcc

from dashboards.figures.common import PERTURBED
from reintegration.analytics import FIGURES, Filters
from reintegration.i18n import _, format_date
from reintegration.people_csv import csv_text

EXACT = "exact"
"""The ``figures`` column of exact figures (protected ones say :data:`PERTURBED`)."""
CONTEXT_COLUMNS = ("figures", "filters", "index_version", "extracted_on")
NO_FILTER = "none"
"""The ``filters`` column when nothing restricts the figures."""
DECIMALS = 4
_COUNTS = frozenset(
    {
        "returnees",
        "returnee_rounds",
        "unscored",
        "surveys",
        "count",
        "interviews",
        "treated",
        "untreated",
        "round",
    }
)
_MEASURE = re.compile(r"mean|share|sd|lower|upper|difference|percent|relative|effective|design")


@dataclass(frozen=True)
class ExportContext:
    """What produced a download: the filters applied (within the user's countries, dates as
    the figures used them), the page's choices, the index version, the day, the figures."""

    filters: tuple[tuple[str, str], ...]
    index_version: str | None
    extracted_on: date
    protected: bool
    choices: tuple[tuple[str, str], ...] = field(default=())

    @property
    def figures(self) -> str:
        """The ``figures`` column: ``exact`` or ``figures perturbed for privacy``."""
        return PERTURBED if self.protected else EXACT

    def filters_text(self) -> str:
        """The filters and choices as the ``filters`` column writes them (canonical codes).

        Examples
        --------
        >>> ExportContext((("country", "SEN"),), "v1", date(2026, 1, 2), False).filters_text()
        'country=SEN'
        >>> ExportContext((), None, date(2026, 1, 2), True).filters_text()
        'none'
        """
        parts = [f"{k}={v}" for k, v in (*self.filters, *self.choices)]
        return "; ".join(parts) if parts else NO_FILTER


def describe_filters(filters: Filters) -> tuple[tuple[str, str], ...]:
    """The restrictions of ``filters`` as (name, value) pairs, in the address's names.

    Examples
    --------
    >>> describe_filters(Filters(countries=frozenset({"SEN", "GIN"}), sex=frozenset({"female"})))
    (('country', 'GIN,SEN'), ('sex', 'female'))
    >>> describe_filters(Filters())
    ()
    """
    out: list[tuple[str, str]] = []

    def joined(values: Any) -> str:
        return ",".join(str(v) for v in sorted(values))

    if filters.countries is not None:
        out.append(("country", joined(filters.countries) or "none of yours"))
    if filters.date_from:
        out.append(("from", filters.date_from.isoformat()))
    if filters.date_to:
        out.append(("to", filters.date_to.isoformat()))
    for name, values in (
        ("round", filters.rounds),
        ("sex", filters.sex),
        ("age", filters.age_group),
        ("return", filters.return_type),
    ):
        if values:
            out.append((name, joined(values)))
    if filters.exclude_flagged_enumerators:
        out.append(("exclude", "flagged"))
    return tuple(out)


def context(
    filters: Filters,
    index_version: str | None,
    *,
    protected: bool,
    choices: Sequence[tuple[str, str]] = (),
    today: date | None = None,
) -> ExportContext:
    """The context of a download of figures computed with ``filters``."""
    return ExportContext(
        describe_filters(filters),
        index_version,
        today or date.today(),
        protected,
        tuple((k, v) for k, v in choices if v),
    )


def screen_filters(ctx: ExportContext) -> str:
    """The filters in the user's language, for a chart and its PNG."""
    names = {
        "country": _("country"),
        "from": _("from"),
        "to": _("to"),
        "round": _("round"),
        "sex": _("sex"),
        "age": _("age"),
        "return": _("return"),
        "exclude": _("excluded"),
    }
    parts = [f"{names.get(k, k)} {v}" for k, v in ctx.filters]
    return ", ".join(parts) if parts else _("none")


def stamp_text(ctx: ExportContext) -> str:
    """The line a chart (and so its PNG) carries: filters and day of extraction."""
    return _(
        "Filters: {filters} · extracted {day}",
        filters=screen_filters(ctx),
        day=format_date(ctx.extracted_on),
    )


# -- tidy columns --------------------------------------------------------------------------


def _renamed(column: str, columns: Sequence[str]) -> str:
    """A column's clear name: interval bounds say they are 95% bounds of what they bound,
    level shares say they are levels."""
    name = re.sub(r"^share_(low|medium|high)(?=$|_)", r"share_level_\1", column)
    name = re.sub(r"_ci_low$", "_lower_95", name)
    name = re.sub(r"_ci_high$", "_upper_95", name)
    for figure in FIGURES:
        if name == f"{figure}_low":
            return f"{figure}_mean_lower_95"
        if name == f"{figure}_high":
            return f"{figure}_mean_upper_95"
        if name == f"{figure}_deff":
            return f"{figure}_design_effect"
    for kind in ("raw", "adjusted"):
        if name in (f"{kind}_low", f"{kind}_high") and f"{kind}_difference" in columns:
            return f"{kind}_difference_{'lower' if name.endswith('low') else 'upper'}_95"
    if name in ("low", "high") and "mean" in columns:
        return f"mean_{'lower' if name == 'low' else 'upper'}_95"
    return {"deff": "design_effect"}.get(name, name)


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with clear column names, whole counts as integers and other numbers rounded
    to :data:`DECIMALS` decimals (a missing value stays missing)."""
    out = frame.rename(columns={c: _renamed(str(c), list(frame.columns)) for c in frame.columns})
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        known = values.dropna()
        whole = bool(len(known)) and bool((known == known.round()).all())
        if pd.api.types.is_integer_dtype(values):
            continue
        if whole and (column in _COUNTS or not _MEASURE.search(str(column))):
            out[column] = values.round().astype("Int64")
        else:
            out[column] = values.astype(float).round(DECIMALS)
    return out


def with_context(frame: pd.DataFrame, ctx: ExportContext) -> pd.DataFrame:
    """:func:`tidy` ``frame`` with the context columns at the end."""
    out = tidy(frame.drop(columns=[c for c in CONTEXT_COLUMNS if c in frame]))
    return out.assign(
        figures=ctx.figures,
        filters=ctx.filters_text(),
        index_version=ctx.index_version or "",
        extracted_on=ctx.extracted_on.isoformat(),
    )


# -- payloads ------------------------------------------------------------------------------


def csv_download(frame: pd.DataFrame, ctx: ExportContext, filename: str) -> dict[str, Any]:
    """A ``dcc.Download`` payload: the tidy frame with its context columns, as CSV (missing
    values as empty cells, formula-safe through :mod:`reintegration.people_csv`)."""
    table = with_context(frame, ctx)
    text = table.copy()
    for column in table.columns:
        if pd.api.types.is_datetime64_any_dtype(table[column]):
            text[column] = table[column].astype(str)
    cells = text.astype(object).where(table.notna(), None)
    rows = [[str(c) for c in table.columns], *cells.itertuples(index=False, name=None)]
    return dcc.send_string(csv_text(rows), filename)


def readme_rows(ctx: ExportContext, columns: Sequence[str], title: str) -> list[list[str]]:
    """The "read me" sheet: what the data is, its context, and what each column means."""
    figures = (
        _("Perturbed for privacy: publishable, small groups gathered, dates in whole months.")
        if ctx.protected
        else _("Exact: for use within the organisation, not for publication.")
    )
    rows = [
        [_("What"), title],
        [_("Filters"), ctx.filters_text()],
        [_("Index version"), ctx.index_version or _("none (answers as received)")],
        [_("Extracted on"), ctx.extracted_on.isoformat()],
        [_("Figures"), figures],
        [
            _("How to read"),
            _(
                "One row per group; the last row is everyone together. An empty cell is a "
                "figure not shown (too few returnees), never a zero."
            ),
        ],
        [],
        [_("Column"), _("Meaning")],
    ]
    rows += [[c, column_meaning(c)] for c in columns]
    return rows


def column_meaning(column: str) -> str:
    """A sentence saying what a tidy column holds (empty for a grouping column)."""
    if column in CONTEXT_COLUMNS:
        return {
            "figures": _("exact, or perturbed for privacy"),
            "filters": _("the filters that produced these figures"),
            "index_version": _("the version of the index that scored the surveys"),
            "extracted_on": _("the day of the download"),
        }[column]
    if column in ("returnees", "count"):
        return _("number of returnees")
    if column == "returnee_rounds":
        return _("returnee-rounds: a returnee counts once in each round surveyed")
    if column == "suppressed":
        return _("true when the group is too small to show")
    if column.endswith("_lower_95"):
        return _("lower bound of the 95% interval")
    if column.endswith("_upper_95"):
        return _("upper bound of the 95% interval")
    if column.startswith("share_level_"):
        return _("share of returnees in this level band (0 to 1)")
    if column == "share_sustainable":
        return _("share of returnees whose reintegration is sustainable (0 to 1)")
    if column.endswith("_mean") or column == "mean":
        return _("mean score (0 to 1)")
    if column.endswith("_sd"):
        return _("standard deviation of the score")
    if column.endswith("design_effect"):
        return _("design effect: how much clustering widens the interval")
    if column.endswith("n_effective"):
        return _("effective number of returnees after clustering")
    return ""


def xlsx_bytes(frame: pd.DataFrame, ctx: ExportContext, title: str) -> bytes:
    """An Excel workbook: a "read me" sheet, then the data sheet (tidy, with context)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    table = with_context(frame, ctx)
    book = Workbook()
    readme = book.active
    readme.title = "read me"
    for row in readme_rows(ctx, [str(c) for c in table.columns], title):
        readme.append(row)
    readme.column_dimensions["A"].width = 28
    readme.column_dimensions["B"].width = 90
    readme["A1"].font = Font(bold=True)
    sheet = book.create_sheet("data")
    sheet.append([str(c) for c in table.columns])
    for values in table.astype(object).where(table.notna(), None).itertuples(index=False):
        sheet.append([_cell(v) for v in values])
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if hasattr(value, "item"):
        return value.item()
    text = str(value)
    # openpyxl stores a text starting with "=" as a formula: keep it a text.
    return "'" + text if text.startswith("=") else text


def xlsx_download(
    frame: pd.DataFrame, ctx: ExportContext, filename: str, title: str
) -> dict[str, Any]:
    """A ``dcc.Download`` payload of :func:`xlsx_bytes`."""
    return dcc.send_bytes(xlsx_bytes(frame, ctx, title), filename)
