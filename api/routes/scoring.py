"""Stateless scoring: JSON records scored with the champion index, nothing stored.

The records go through the very path of ``reintegration score`` (``reintegration.scoring``):
written as JSON lines to a private temporary folder and read back by the batch reader, so the
validation messages are those of an upload, with the record's position as its row.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from api.deps import CurrentUser, ServicesDep
from api.problems import problem_responses
from api.schemas.scoring import ScoreRequest, ScoreResponse
from reintegration.scoring import ID_COLUMN, score_file

router = APIRouter(tags=["scoring"])

TEXT_COLUMNS = {ID_COLUMN, "level", "weakest_dimension", "index_version"}


def _value(column: str, text: str) -> Any:
    if text == "":
        return None
    if column in TEXT_COLUMNS:
        return text
    if column == "sustainable":
        return text == "true"
    return float(text)


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score records without storing them",
    responses=problem_responses(413, 422),
)
def score_records(services: ServicesDep, user: CurrentUser, body: ScoreRequest) -> Any:
    """Score JSON records with the champion index: the valid ones in input order, and for
    the others each rejected cell with the same sentence an upload would give."""
    index, label, version = services.champions.index()
    with tempfile.TemporaryDirectory(prefix="score-") as folder:
        path = Path(folder) / "records"
        with path.open("w", encoding="utf-8") as fh:
            for record in body.records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        out = io.BytesIO()
        report = score_file(path, out, index, services.questionnaire)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"))))
    rejected = {issue.row for issue in report.issues}
    positions: list[int | None] = [n for n in range(1, report.received + 1) if n not in rejected]
    if len(positions) != len(rows):  # only if a rejected row carried no issue; never seen
        positions = [None] * len(rows)
    scores = [
        {"record": n, **{c: _value(c, t) for c, t in row.items()}, "risk": None}
        for n, row in zip(positions, rows, strict=True)
    ]
    return {
        "index_version": label,
        "model_version": version,
        "received": report.received,
        "scored": report.scored,
        "rejected": report.rejected_rows,
        "scores": scores,
        "errors": [
            {"row": i.row, "column": i.column, "value": i.value, "message": i.message}
            for i in report.issues
        ],
        "warnings": [
            {"row": n.row, "column": n.column, "message": n.message} for n in report.notes
        ],
        "ignored_columns": report.ignored_columns,
    }
