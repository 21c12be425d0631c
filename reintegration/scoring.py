"""Stateless scoring of a batch file: read, validate, code, score and write, chunk by chunk.

This is ``reintegration score``: one output row per valid input row, in input order, with the
columns of DESIGN.md; rejected rows are returned with their row, column and reason. It touches
no store and writes nothing but its output.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from reintegration.coding import RowIssue, check_required, code_chunk
from reintegration.index import LEVELS, REPORTED_DECIMALS, ReintegrationIndex, report_figures
from reintegration.questionnaire import Questionnaire
from reintegration.reading import BatchReader, FileNote

if TYPE_CHECKING:
    import pandas as pd

ID_COLUMN = "submission_id"
BOOLEAN_TEXT = ("false", "true")


@dataclass
class ScoreReport:
    """What a scoring run saw: rows read, rows scored, and every rejected cell."""

    received: int = 0
    scored: int = 0
    rejected_rows: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    notes: list[FileNote] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def output_columns(index: ReintegrationIndex) -> list[str]:
    """The columns of a score file, in DESIGN.md's order."""
    dims = index.dimensions_
    return [
        ID_COLUMN,
        *dims,
        "composite",
        *(f"coverage_{d}" for d in dims),
        "level",
        "weakest_dimension",
        "sustainable",
        "index_version",
    ]


@functools.cache
def _figure_texts() -> pa.Array:
    """Every reported figure as text, "0.0000" to "1.0000", indexed by ten-thousandths."""
    scale = 10**REPORTED_DECIMALS
    return pa.array([f"{k / scale:.{REPORTED_DECIMALS}f}" for k in range(scale + 1)])


def format_figures(values: np.ndarray) -> pa.Array:
    """Figures as text with four decimals (``0.5000``), null where missing.

    Figures lie in [0, 1], so formatting is one gather from the 10,001 possible texts.

    Examples
    --------
    >>> format_figures(np.array([0.34375, 1.0, np.nan])).to_pylist()
    ['0.3438', '1.0000', None]
    """
    ints = report_figures(values)
    return pc.take(_figure_texts(), pa.array(ints, mask=ints < 0))


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pc.take(pa.array(labels), indices)


def score_table(
    ids: pa.Array, scores: dict[str, np.ndarray], index: ReintegrationIndex
) -> pa.Table:
    """Turn the estimator's arrays into the output table of text columns."""
    columns: dict[str, pa.Array] = {ID_COLUMN: ids}
    for name in output_columns(index)[1:]:
        if name == "level":
            columns[name] = _labels(scores[name], LEVELS)
        elif name == "weakest_dimension":
            columns[name] = _labels(scores[name], tuple(index.dimensions_))
        elif name == "sustainable":
            columns[name] = _labels(scores[name], BOOLEAN_TEXT)
        elif name == "index_version":
            columns[name] = pa.repeat(index.label_, len(ids)).cast(pa.string())
        else:
            columns[name] = format_figures(scores[name])
    return pa.table(columns)


class _CsvOut:
    """CSV output without needless quotes: Arrow writes chunks, quoting only where needed."""

    def __init__(self, sink: BinaryIO, header: list[str]) -> None:
        self.sink = sink
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(header)
        sink.write(text.getvalue().encode("utf-8"))

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        # Only the submission ids are free text; every other cell is a figure or a code.
        special = pc.match_substring_regex(table.column(ID_COLUMN), r'[,"\r\n]')
        quoting = "needed" if pc.any(special).as_py() else "none"
        self.sink.flush()
        pacsv.write_csv(
            table, self.sink, pacsv.WriteOptions(include_header=False, quoting_style=quoting)
        )


def _max_rows(given: int | None) -> int:
    if given is not None:
        return given
    from reintegration.settings import get_settings  # pydantic only when no cap was given

    return get_settings().max_rows


def score_file(
    path: Path | str,
    out: BinaryIO,
    index: ReintegrationIndex,
    questionnaire: Questionnaire,
    progress: Callable[[int], None] | None = None,
    max_rows: int | None = None,
) -> ScoreReport:
    """Score every valid row of a batch file into ``out`` (CSV, UTF-8, no BOM).

    Parameters
    ----------
    path : path-like
        Canonical CSV (comma or semicolon, with or without BOM), XLSX or JSON lines.
    out : binary file
        Receives the header and one row per valid input row, in input order.
    index : ReintegrationIndex
        A fitted index version.
    questionnaire : Questionnaire
    progress : callable, optional
        Called with the number of rows done after each chunk.
    max_rows : int, optional
        Most data rows the file may hold (default ``REINTEGRATION_MAX_ROWS``); a longer file
        is refused as soon as reading passes that row.

    Returns
    -------
    ScoreReport

    Raises
    ------
    UnreadableFileError, MissingColumnsError
        Nothing can be scored; nothing has been written beyond what ``out`` already held.
    """
    wanted = {ID_COLUMN, *questionnaire.item_ids}
    wanted |= {f.name for f in questionnaire.metadata if f.kind not in ("text", "case_number")}
    reader = BatchReader(path, questionnaire, wanted=wanted, max_rows=_max_rows(max_rows))
    check_required(reader.layout, questionnaire, "score")
    report = ScoreReport(ignored_columns=list(reader.layout.ignored))
    writer: _CsvOut | None = None
    required = questionnaire.required_columns("score")
    for chunk in reader.chunks():
        coded = code_chunk(chunk, reader.layout, questionnaire, required)
        scores = index.score_arrays(coded.items, n_rows=chunk.num_rows)
        table = score_table(coded.metadata[ID_COLUMN], scores, index)
        if coded.rejected.any():
            table = table.filter(pa.array(coded.accepted))
        if writer is None:
            writer = _CsvOut(out, output_columns(index))
        writer.write(table)
        report.received += chunk.num_rows
        report.scored += table.num_rows
        report.rejected_rows += int(coded.rejected.sum())
        report.issues.extend(coded.issues)
        report.notes.extend(coded.notes)
        if progress is not None:
            progress(report.received)
    if writer is None:
        _CsvOut(out, output_columns(index))
    report.notes[:0] = reader.layout.notes
    return report


def scored_records(
    path: Path | str, index: ReintegrationIndex, questionnaire: Questionnaire
) -> tuple[pd.DataFrame, ScoreReport]:
    """Code and score a batch file into a frame: the accepted rows' metadata and scores.

    Unlike :func:`score_file`, this keeps the metadata (for summaries); it requires what
    ``ingest`` requires. Scores come from ``index.transform``: levels and weakest dimensions
    as categoricals, ``sustainable`` as a nullable boolean.
    """
    import pandas as pd

    reader = BatchReader(path, questionnaire, max_rows=_max_rows(None))
    check_required(reader.layout, questionnaire, "ingest")
    report = ScoreReport(ignored_columns=list(reader.layout.ignored))
    frames = []
    for chunk in reader.chunks():
        coded = code_chunk(
            chunk, reader.layout, questionnaire, questionnaire.required_columns("ingest")
        )
        metadata = pd.DataFrame(
            {
                name: values.to_numpy(zero_copy_only=False)
                if isinstance(values, pa.Array)
                else values
                for name, values in coded.metadata.items()
            }
        )
        scores = index.transform(pd.DataFrame(coded.items, index=metadata.index))
        frames.append(pd.concat([metadata, scores], axis=1)[coded.accepted])
        report.received += chunk.num_rows
        report.scored += int(coded.accepted.sum())
        report.rejected_rows += int(coded.rejected.sum())
        report.issues.extend(coded.issues)
    return pd.concat(frames, ignore_index=True), report
