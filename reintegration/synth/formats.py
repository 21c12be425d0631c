"""Writers of a synthetic panel: canonical CSV, XLSX and JSON lines, Kobo and ODK exports.

Kobo exports carry group prefixes (``economic/...``), Kobo's system columns and the
select-multiple item both as one column and as one 0/1 column per choice; ODK Central's CSV
joins groups with ``-`` and carries ``KEY``, ``SubmissionDate``, ``ReviewState`` and the like.
Neither has a ``submission_id`` column: the identity is ``meta/instanceID`` / ``KEY``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from reintegration.errors import SynthError
from reintegration.questionnaire import Questionnaire, load_questionnaire

FORMATS = ("csv", "xlsx", "jsonl", "kobo", "kobo-xlsx", "odk")
XLSX_MAX_ROWS = 1_048_575


def write_truth(truth: Mapping[str, Any], path: Path | str) -> Path:
    """Write the ground truth next to a panel file, as ``<path>.truth.json``.

    Parameters
    ----------
    truth : mapping
        The dict returned by :func:`generate_panel`.
    path : path-like
        The panel file (``panel.csv`` gives ``panel.csv.truth.json``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    target = Path(f"{path}.truth.json")
    target.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def write_panel(
    frame: pd.DataFrame,
    path: Path | str,
    fmt: str = "csv",
    *,
    questionnaire: Questionnaire | None = None,
) -> None:
    """Write a panel in one of :data:`FORMATS`.

    Parameters
    ----------
    frame : pandas.DataFrame
        A panel in the canonical columns (as :func:`generate_panel` returns it).
    path : path-like
        The file to write (overwritten).
    fmt : {"csv", "xlsx", "jsonl", "kobo", "kobo-xlsx", "odk"}
        ``csv``: comma, UTF-8 without BOM, quotes only where needed; ``xlsx``: one sheet;
        ``jsonl``: one object per line, blank as ``""``; ``kobo``: a KoboToolbox CSV export
        (``;``, every value quoted, group prefixes ``economic/...``, select-multiple both as
        one column and as 0/1 columns, as Kobo's default export has it, Kobo's system
        columns); ``kobo-xlsx``: the same as XLSX; ``odk``: an ODK Central CSV export
        (groups joined with ``-``, Central's columns). Kobo and ODK carry the submission id
        only as their own identifiers (``meta/instanceID`` and ``_uuid``; ``KEY``), as a real
        export of the form does.
    questionnaire : Questionnaire, optional
        The spec that gives item groups for the Kobo and ODK layouts; the shipped one by
        default.

    Raises
    ------
    ValueError
        For an unknown format, or more rows than a worksheet holds.
    """
    q = questionnaire or load_questionnaire()
    if fmt == "csv":
        _write_csv(_arrow(frame), path, ",")
    elif fmt == "xlsx":
        _write_xlsx(_arrow(frame), path, q.form_id)
    elif fmt == "jsonl":
        _write_jsonl(_arrow(frame), path)
    elif fmt == "kobo":
        _write_csv(_kobo(frame, q), path, ";", quote_all=True)
    elif fmt == "kobo-xlsx":
        _write_xlsx(_kobo(frame, q), path, q.form_id)
    elif fmt == "odk":
        _write_csv(_odk(frame, q), path, ",")
    else:
        raise SynthError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table of strings (zero-copy for the generator's own columns)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return pa.table({name: pc.cast(table[name], pa.string()) for name in table.column_names})


def _write_csv(
    table: pa.Table, path: Path | str, delimiter: str, *, quote_all: bool = False
) -> None:
    if quote_all:
        table = pa.table({n: pc.fill_null(table[n], "") for n in table.column_names})
        style = "all_valid"
    else:
        # pyarrow's "needed" style quotes every string; "none" is quick and refuses a cell
        # that needs quotes, and then the csv module quotes just that kind of cell.
        style = "none"
    options = pa_csv.WriteOptions(delimiter=delimiter, quoting_style=style, quoting_header=style)
    try:
        pa_csv.write_csv(table, str(path), options)
    except pa.ArrowInvalid:
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
            writer.writerow(table.column_names)
            for batch in table.to_batches(max_chunksize=65_536):
                writer.writerows(zip(*(c.to_pylist() for c in batch.columns), strict=True))


def _write_jsonl(table: pa.Table, path: Path | str) -> None:
    """One object per line; cells that JSON must escape go through :mod:`json`, the rest is
    assembled by Arrow, a batch at a time."""
    keys = [json.dumps(name, ensure_ascii=False) for name in table.column_names]
    with open(path, "wb") as out:
        for batch in table.to_batches(max_chunksize=131_072):
            columns = [pc.fill_null(c, "") for c in batch.columns]
            if _needs_escape(columns):
                for row in zip(*(c.to_pylist() for c in columns), strict=True):
                    obj = dict(zip(table.column_names, row, strict=True))
                    out.write(json.dumps(obj, ensure_ascii=False).encode() + b"\n")
                continue
            parts: list[Any] = []
            for k, (key, column) in enumerate(zip(keys, columns, strict=True)):
                parts += [("{" if k == 0 else '",') + key + ':"', column]
            lines = pc.binary_join_element_wise(*parts, '"}\n', "")
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
            first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
            out.write(memoryview(lines.buffers()[2])[first:last])


def _needs_escape(columns: Sequence[pa.Array]) -> bool:
    """Whether a cell holds a quote, a backslash or a control character (raw buffer scan)."""
    for column in columns:
        data = column.buffers()[2]
        if data is None:
            continue
        raw = np.frombuffer(data, dtype=np.uint8)
        if (raw < 0x20).any() or (raw == ord('"')).any() or (raw == ord("\\")).any():
            return True
    return False


def _write_xlsx(table: pa.Table, path: Path | str, sheet: str) -> None:
    from openpyxl import Workbook

    if table.num_rows > XLSX_MAX_ROWS:
        raise SynthError(
            f"{table.num_rows} rows do not fit in one worksheet "
            f"(at most {XLSX_MAX_ROWS}); write CSV or JSON lines instead"
        )
    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet[:31])
    ws.append(table.column_names)
    for batch in table.to_batches(max_chunksize=65_536):
        columns = [[v or None for v in c.to_pylist()] for c in batch.columns]
        for row in zip(*columns, strict=True):
            ws.append(row)
    book.save(path)


def _grouped(table: pa.Table, q: Questionnaire, sep: str, split_multiple: bool) -> dict[str, Any]:
    """Metadata columns (but submission_id) at the top level, items under their group."""
    out: dict[str, Any] = {}
    for f in q.metadata:
        if f.name in table.column_names and f.name != "submission_id":
            out[f.name] = table[f.name]
    for item in q.items:
        if item.id not in table.column_names:
            continue
        name = f"{item.dimension}{sep}{item.id}"
        out[name] = table[item.id]
        if split_multiple and item.is_multiple:
            codes = [o.code for o in item.options]
            codes += [item.exclusive.code] if item.exclusive else []
            codes += [o.code for o in q.missing_codes]
            # Match on the few distinct answers, then spread to the rows.
            encoded = pc.dictionary_encode(table[item.id].combine_chunks())
            for code in codes:
                hit = pc.match_substring_regex(encoded.dictionary, f"(^| ){re.escape(code)}( |$)")
                flags = pc.if_else(hit, "1", "0")
                out[f"{name}/{code}"] = pc.take(flags, encoded.indices)
    return out


def _submitted_at(table: pa.Table) -> pa.Array:
    """Upload times: the interview day plus a deterministic time between 08:00 and 18:00."""
    day = pc.cast(pc.strptime(table["interview_date"], format="%Y-%m-%d", unit="s"), pa.int64())
    seconds = (np.arange(table.num_rows, dtype=np.int64) * 7919) % 36_000 + 8 * 3600
    return pc.cast(pc.add(day, pa.array(seconds)), pa.timestamp("s"))


def _kobo(frame: pd.DataFrame, q: Questionnaire) -> pa.Table:
    table = _arrow(frame)
    n = table.num_rows
    out = _grouped(table, q, "/", split_multiple=True)
    counter = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
    blank = pa.repeat("", n)
    out |= {
        # Kobo's __version__ names the deployed asset version, not the form's own version.
        "__version__": pa.repeat("v" + hashlib.sha256(q.form_version.encode()).hexdigest()[:21], n),
        "meta/instanceID": pc.binary_join_element_wise("uuid:", table["submission_id"], ""),
        "_id": counter,
        "_uuid": table["submission_id"],
        "_submission_time": pc.strftime(_submitted_at(table), format="%Y-%m-%dT%H:%M:%S"),
        "_validation_status": blank,
        "_notes": blank,
        "_status": pa.repeat("submitted_via_web", n),
        "_submitted_by": blank,
        "_tags": blank,
        "_index": counter,
    }
    return pa.table(out)


def _odk(frame: pd.DataFrame, q: Questionnaire) -> pa.Table:
    table = _arrow(frame)
    n = table.num_rows
    enumerator = pc.dictionary_encode(pc.fill_null(table["enumerator_id"], "").combine_chunks())
    devices = [
        hashlib.sha256(e.encode()).hexdigest()[:16] for e in enumerator.dictionary.to_pylist()
    ]
    key = pc.binary_join_element_wise("uuid:", table["submission_id"], "")
    stamp = pc.strftime(
        pc.cast(_submitted_at(table), pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%SZ"
    )
    out: dict[str, Any] = {"SubmissionDate": stamp}
    out |= _grouped(table, q, "-", split_multiple=False)
    zeros = pa.repeat("0", n)
    blank = pa.repeat("", n)
    out |= {
        "meta-instanceID": key,
        "KEY": key,
        "SubmitterID": pc.cast(pc.add(enumerator.indices, 1), pa.string()),
        "SubmitterName": enumerator.dictionary.take(enumerator.indices),
        "AttachmentsPresent": zeros,
        "AttachmentsExpected": zeros,
        "Status": blank,
        "ReviewState": blank,
        "DeviceID": pa.array([f"collect:{d}" for d in devices]).take(enumerator.indices),
        "Edits": zeros,
        "FormVersion": table["form_version"],
    }
    return pa.table(out)
