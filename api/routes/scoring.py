"""Stateless scoring: JSON records scored with the champion index, nothing stored.

The records go through the very path of ``reintegration score`` (``reintegration.scoring``):
written as JSON lines to a private temporary folder and read back by the batch reader, so the
validation messages are those of an upload, with the record's position as its row.

When a risk model is champion, a valid record interviewed within 4 months of return (what the
model takes as a first survey) also gets its risk, computed from the same features as the
stored risk rows (``reintegration.risk_features``).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter

from api.deps import CurrentUser, ServicesDep
from api.problems import problem_responses
from api.schemas.scoring import ScoreRequest, ScoreResponse
from reintegration.coding import NO_DAY, code_chunk
from reintegration.prepare import DAYS_PER_MONTH
from reintegration.questionnaire import Questionnaire
from reintegration.reading import BatchReader
from reintegration.risk_features import (
    CATEGORICAL,
    FIRST_SURVEY_MAX_MONTHS,
    features,
)
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
        report = score_file(
            path, out, index, services.questionnaire, max_rows=services.settings.max_rows
        )
        champion = services.champions.risk()
        risks = _risks(path, services.questionnaire, *champion) if champion else {}
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"))))
    rejected = {issue.row for issue in report.issues}
    positions: list[int | None] = [n for n in range(1, report.received + 1) if n not in rejected]
    if len(positions) != len(rows):  # only if a rejected row carried no issue; never seen
        positions = [None] * len(rows)
    scores = [
        {
            "record": n,
            **{c: _value(c, t) for c, t in row.items()},
            "risk": risks.get(n) if n else None,
        }
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


def _risks(
    path: Path, questionnaire: Questionnaire, model: Any, version: int
) -> dict[int, dict[str, Any]]:
    """Risk of each valid record that can be a first survey, by record position."""
    reader = BatchReader(path, questionnaire)
    frames = []
    for chunk in reader.chunks():
        coded = code_chunk(
            chunk, reader.layout, questionnaire, questionnaire.required_columns("score")
        )
        meta = coded.metadata
        n = chunk.num_rows
        interview = meta.get("interview_date", np.full(n, NO_DAY))
        returned = meta.get("return_date", np.full(n, NO_DAY))
        known = (interview != NO_DAY) & (returned != NO_DAY)
        months = np.where(known, (interview - returned) / DAYS_PER_MONTH, np.nan)
        eligible = coded.accepted & known & (months <= FIRST_SURVEY_MAX_MONTHS)
        frame = pd.DataFrame(
            {
                "record": coded.rows,
                **coded.items,
                **{c: meta.get(c, np.full(n, None, dtype=object)) for c in CATEGORICAL},
                "age_at_return": meta.get("age_at_return", np.full(n, np.nan)),
                "months_since_return": months,
                "assistance": meta.get("assistance", np.full(n, None, dtype=object)),
            }
        )
        frames.append(frame[eligible])
    first = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if first.empty:
        return {}
    probabilities = np.asarray(model.risk(features(first, questionnaire)), dtype=float)
    bands = model.bands(probabilities)
    return {
        int(record): {"model_version": version, "probability": float(p), "band": band}
        for record, p, band in zip(first["record"], probabilities, bands, strict=True)
    }
