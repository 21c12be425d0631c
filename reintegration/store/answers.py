"""How a submission's coded answers are stored, and read back.

Everything that reads ``submission.answers`` (training, rescoring, drift) goes through
:func:`decode_answers`, so the stored representation can change in one place.

Stored form (since the compact format): one JSON *string* per submission, the questionnaire's
spec version then every item's answer code in the spec's item order, separated by ``|``, an
empty field for an item without an answer::

    "1.0.0|satisfied|never||anger fear|..."

Naming each item in every row (the earlier form, a JSON object of item id to code, still read
here) made a stored answer about 750 bytes; in spec order it is about 215, and an ingest of a
million interviews writes about half the bytes it did. The value stays valid JSON, so the
column keeps its type on both databases. Codes are identifiers of the spec, so they need no
escaping; the encoder checks that once per questionnaire.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from reintegration.errors import ConfigurationError, SpecError
from reintegration.followup import DEFAULT_FOLLOW_UP
from reintegration.questionnaire import DEFAULT_SPEC, Questionnaire, load_questionnaire

SEPARATOR = "|"
SPEC_FOLDER = DEFAULT_SPEC.parent
_UNSAFE = (SEPARATOR, '"', "\\")  # a code holding one of these would break the stored form


def encode_answers(codes: Mapping[str, pa.Array], questionnaire: Questionnaire, n: int) -> pa.Array:
    """Each row's answers in the stored form (see the module's docstring), built by Arrow.

    Parameters
    ----------
    codes : mapping of str to pyarrow.Array
        Item id to the rows' answer codes ('' where blank); an item absent from the mapping
        is blank in every row.
    questionnaire : Questionnaire
        Gives the item order and the spec version written first.
    n : int
        Number of rows.

    Returns
    -------
    pyarrow.Array
        One JSON string (text, quotes included) per row.

    Examples
    --------
    >>> q = load_questionnaire()
    >>> first, second = q.items[:2]
    >>> code = second.options[0].code
    >>> stored = encode_answers({second.id: pa.array([code, ""])}, q, 2)
    >>> fields = [q.spec_version, "", code] + [""] * (len(q.items) - 2)
    >>> stored[0].as_py() == '"' + "|".join(fields) + '"'
    True
    >>> decode_answers(stored.to_pylist(), [first.id, second.id])
      econ_satisfaction food_reduction
    0              None          never
    1              None           None
    """
    _check_codes(questionnaire)
    parts: list[Any] = [codes.get(item, "") for item in questionnaire.item_ids]
    if not any(isinstance(p, pa.Array | pa.ChunkedArray) for p in parts):
        blank = SEPARATOR.join(['"' + questionnaire.spec_version, *parts]) + '"'
        return pa.array([blank] * n, pa.string())
    body = pc.binary_join_element_wise('"' + questionnaire.spec_version, *parts, SEPARATOR)
    return pc.binary_join_element_wise(body, '"', "")


def decode_answers(
    raw: Iterable[Any], items: Sequence[str], *, questionnaire: Questionnaire | None = None
) -> pd.DataFrame:
    """The stored answers as a frame of answer codes, one column per item, in ``items`` order.

    Parameters
    ----------
    raw : iterable
        ``submission.answers`` values as the driver returns them: the JSON text, or the value
        it decodes to (a text; for rows stored before the compact form, an object of item id
        to answer code).
    items : sequence of str
        The item ids wanted as columns.
    questionnaire : Questionnaire, optional
        A spec that is not shipped in ``reintegration/spec`` but wrote some of the rows
        (shipped specs are found by their version).

    Returns
    -------
    DataFrame
        Answer codes as text (a select-multiple keeps its space-separated codes); an item
        without an answer, or absent from the spec that wrote the row, is missing (``None``).

    Raises
    ------
    ConfigurationError
        When a row was written with a spec version that is not shipped (nor given).

    Examples
    --------
    Both stored forms, as the drivers return them (SQLite gives the JSON text, psycopg the
    decoded value):

    >>> q = load_questionnaire()
    >>> first, second = q.items[:2]
    >>> codes = [first.options[1].code, ""] + [""] * (len(q.items) - 2)
    >>> compact = "|".join([q.spec_version, *codes])
    >>> legacy = json.dumps({second.id: second.options[0].code})
    >>> decode_answers(['"' + compact + '"', compact, legacy, {}], [first.id, second.id])
      econ_satisfaction food_reduction
    0         satisfied           None
    1         satisfied           None
    2              None          never
    3              None           None
    """
    texts = [json.dumps(value) if isinstance(value, dict) else _text(value) for value in raw]
    table = _decode(pa.array(texts, pa.string()), items, questionnaire)
    return pd.DataFrame(
        {item: table.column(item).to_numpy(zero_copy_only=False) for item in items},
        columns=list(items),
        dtype=object,
    )


def decode_joined_answers(
    text: str | bytes,
    items: Sequence[str],
    rows: int,
    *,
    questionnaire: Questionnaire | None = None,
) -> pa.Table:
    """Stored answers joined by newlines (as the database concatenates them), decoded in bulk.

    For readers of many rows: the database joins a chunk's ``submission.answers`` (SQLite
    ``group_concat(answers, char(10))``, PostgreSQL ``string_agg(answers::text, E'\\n')``)
    and Arrow splits them, with no Python object per row.

    Parameters
    ----------
    text : str or bytes
        One stored value per line, either form.
    items : sequence of str
        The item ids wanted as columns.
    rows : int
        How many values the text holds (checked).
    questionnaire : Questionnaire, optional
        As for :func:`decode_answers`.

    Returns
    -------
    pyarrow.Table
        One string column per item, in ``items`` order; null where there is no answer.

    Raises
    ------
    ValueError
        When the text does not hold ``rows`` values.

    Examples
    --------
    >>> q = load_questionnaire()
    >>> first = q.items[0]
    >>> line = "|".join([q.spec_version, first.options[0].code] + [""] * (len(q.items) - 1))
    >>> table = decode_joined_answers('"' + line + '"' + "\\n{}", [first.id], 2)
    >>> table.column(first.id).to_pylist() == [first.options[0].code, None]
    True
    """
    schema = pa.schema([(item, pa.string()) for item in items])
    if rows == 0:
        return schema.empty_table()
    lines = (text.decode("utf-8") if isinstance(text, bytes) else text).split("\n")
    if len(lines) != rows:
        raise ValueError(f"expected {rows} stored answers, found {len(lines)}")
    return _decode(pa.array(lines, pa.string()), items, questionnaire)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _decode(texts: pa.Array, items: Sequence[str], questionnaire: Questionnaire | None) -> pa.Table:
    """One string column per item (null: no answer) from stored values of either form."""
    schema = pa.schema([(item, pa.string()) for item in items])
    if not len(texts):
        return schema.empty_table()
    legacy = pc.starts_with(texts, "{").to_numpy(zero_copy_only=False)
    parts: list[tuple[np.ndarray, pa.Table]] = []
    if legacy.any():
        rows = np.flatnonzero(legacy)
        lines = "\n".join(pc.filter(texts, pa.array(legacy)).to_pylist()).encode("utf-8")
        table = pajson.read_json(
            io.BytesIO(lines),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
        parts.append((rows, table.select(list(items))))
    if not legacy.all():
        compact = ~legacy
        chosen = pc.utf8_trim(pc.filter(texts, pa.array(compact)), characters='"')
        parts += _decode_compact(chosen, np.flatnonzero(compact), items, questionnaire)
    if len(parts) == 1:
        table = parts[0][1]
    else:
        order = np.argsort(np.concatenate([rows for rows, _ in parts]), kind="stable")
        table = pa.concat_tables([t.cast(schema) for _, t in parts]).take(pa.array(order))
    columns = [
        pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _decode_compact(
    texts: pa.Array, rows: np.ndarray, items: Sequence[str], questionnaire: Questionnaire | None
) -> list[tuple[np.ndarray, pa.Table]]:
    fields = pc.split_pattern(texts, SEPARATOR)
    versions = pc.list_element(fields, 0).to_numpy(zero_copy_only=False)
    parts = []
    for version in dict.fromkeys(versions.tolist()):
        layout = _layout(version, questionnaire)
        width = len(layout) + 1
        mine = versions == version
        chosen = pc.filter(fields, pa.array(mine))
        if pc.any(pc.not_equal(pc.list_value_length(chosen), width)).as_py():
            raise ConfigurationError(
                f"Stored answers of questionnaire spec {version} do not hold one field per item "
                "of that spec: the spec file was changed without a new spec_version."
            )
        flat = pc.list_flatten(chosen)
        starts = np.arange(len(chosen), dtype=np.int64) * width
        position = {item: k + 1 for k, item in enumerate(layout)}
        blank = pa.nulls(len(chosen), pa.string())
        columns = [
            pc.take(flat, pa.array(starts + position[item])) if item in position else blank
            for item in items
        ]
        parts.append((rows[mine], pa.Table.from_arrays(columns, names=list(items))))
    return parts


def _layout(version: str, questionnaire: Questionnaire | None) -> tuple[str, ...]:
    if questionnaire is not None and questionnaire.spec_version == version:
        return questionnaire.item_ids
    shipped = _shipped_layouts()
    if version not in shipped:
        raise ConfigurationError(
            f"Stored answers were written with questionnaire spec {version}, which this version "
            "of reintegration does not ship; install the version that wrote them."
        )
    return shipped[version]


@functools.cache
def _shipped_layouts() -> dict[str, tuple[str, ...]]:
    layouts: dict[str, tuple[str, ...]] = {}
    for path in sorted(Path(SPEC_FOLDER).glob("*.yaml")):
        if path.name == DEFAULT_FOLLOW_UP.name:  # the follow-up schedule, not a questionnaire
            continue
        spec = load_questionnaire(path)
        layouts[spec.spec_version] = spec.item_ids
    return layouts


@functools.cache
def _check_codes(questionnaire: Questionnaire) -> None:
    for item in questionnaire.items:
        options = (*item.options, *item.not_applicable, *questionnaire.missing_codes)
        for option in (*options, *((item.exclusive,) if item.exclusive else ())):
            if any(mark in option.code for mark in _UNSAFE):
                raise SpecError(
                    f"item {item.id}: option code {option.code!r} holds one of "
                    f"{' '.join(_UNSAFE)}, which the stored answers use as marks"
                )
