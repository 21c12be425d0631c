"""What the early-warning risk model sees and predicts, from stored interviews.

DESIGN.md's time bands: the *first survey* is a returnee's first interview when it took place
within 4 months of return (≤ 4); the *outcome* is whether the returnee is not sustainable at
their first follow-up 9 or more months after return (≥ 9). Features come from the first
survey alone (its coded items, the returnee's sex, age at return, return type and country, the
assistance recorded at it, and its months since return); dimension scores are computed from
those items by the model itself. Nothing of the follow-up reaches the features: the two frames
are built from disjoint interviews and joined on the returnee only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reintegration.index import NOT_APPLICABLE, ReintegrationIndex
from reintegration.questionnaire import Questionnaire

FIRST_SURVEY_MAX_MONTHS = 4.0
FOLLOW_UP_MIN_MONTHS = 9.0
CATEGORICAL = ("sex", "return_type", "country")
NUMERIC = ("age_at_return", "months_since_return")
GROUPS = ("sex", "age_group", "return_type")
"""Subgroups every evaluation reports (and their intersections)."""
NOT_RECORDED = "not recorded"
REASONS = 3
"""Lowest-scoring items given as reasons with each risk."""


def assistance_columns(questionnaire: Questionnaire) -> tuple[str, ...]:
    """One 0/1 feature per kind of assistance of the spec: ``assistance_<code>``."""
    field = questionnaire.metadata_field("assistance")
    return tuple(f"assistance_{c.code}" for c in field.choices)


def feature_columns(questionnaire: Questionnaire) -> tuple[str, ...]:
    """The input columns of the risk model, in order."""
    return (
        *questionnaire.item_ids,
        *CATEGORICAL,
        *NUMERIC,
        *assistance_columns(questionnaire),
    )


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["returnee_key", "interview_date", "survey_round", "pk"])


def first_surveys(submissions: pd.DataFrame) -> pd.DataFrame:
    """Each returnee's first interview, kept only when it was within 4 months of return.

    Parameters
    ----------
    submissions : DataFrame
        Current submissions (see ``reintegration.store.submissions.read_submissions``).

    Returns
    -------
    DataFrame
        A new frame, one row per returnee whose first interview qualifies, ordered by ``pk``.
    """
    first = _ordered(submissions).groupby("returnee_key", sort=False).head(1)
    return first[first["months_since_return"] <= FIRST_SURVEY_MAX_MONTHS].sort_values("pk")


def outcomes(
    submissions: pd.DataFrame, index: ReintegrationIndex, questionnaire: Questionnaire
) -> pd.DataFrame:
    """Each returnee's first follow-up 9 or more months after return, and the target.

    Parameters
    ----------
    submissions : DataFrame
        Current submissions with coded items.
    index : ReintegrationIndex
        The index version whose *sustainable* flag defines the outcome.
    questionnaire : Questionnaire

    Returns
    -------
    DataFrame
        ``returnee_key``, ``follow_up_pk``, ``follow_up_months`` and ``not_sustainable``
        (1 or 0); a returnee whose first follow-up cannot be scored has no row (the outcome is
        unknown).
    """
    later = _ordered(submissions[submissions["months_since_return"] >= FOLLOW_UP_MIN_MONTHS])
    follow = later.groupby("returnee_key", sort=False).head(1)
    scores = index.score_arrays(
        {i: follow[i].to_numpy() for i in questionnaire.item_ids}, n_rows=len(follow)
    )
    known = scores["sustainable"] >= 0
    return pd.DataFrame(
        {
            "returnee_key": follow["returnee_key"].to_numpy()[known],
            "follow_up_pk": follow["pk"].to_numpy()[known],
            "follow_up_months": follow["months_since_return"].to_numpy()[known],
            "not_sustainable": (scores["sustainable"][known] == 0).astype(np.int64),
        }
    )


def features(first: pd.DataFrame, questionnaire: Questionnaire) -> pd.DataFrame:
    """The risk model's input for first surveys: one row each, columns of :func:`feature_columns`.

    Parameters
    ----------
    first : DataFrame
        First surveys (see :func:`first_surveys`) with their coded items.
    questionnaire : Questionnaire

    Returns
    -------
    DataFrame
        Items as float (``NaN`` missing, ``NOT_APPLICABLE`` kept), categoricals as text,
        age and months as float, one 0/1 float per kind of assistance (``NaN`` when the
        interview recorded none); same index as ``first``.
    """
    out = pd.DataFrame(index=first.index)
    for item in questionnaire.item_ids:
        out[item] = first[item].astype("float64")
    for name in CATEGORICAL:
        out[name] = first[name].astype(object).where(first[name].notna(), NOT_RECORDED)
    for name in NUMERIC:
        out[name] = pd.to_numeric(first[name]).astype("float64")
    recorded = first["assistance"].fillna("").astype(str).str.split()
    given = first["assistance"].notna() & (first["assistance"].fillna("") != "")
    for column in assistance_columns(questionnaire):
        code = column.removeprefix("assistance_")
        flag = recorded.map(lambda codes, c=code: c in codes).astype("float64")
        out[column] = flag.where(given, np.nan)
    return out


def age_group(age: pd.Series, questionnaire: Questionnaire) -> pd.Series:
    """``child`` below the spec's age at return, else ``adult``; missing stays missing."""
    values = pd.to_numeric(age)
    group = np.where(values < questionnaire.child_age_below, "child", "adult")
    return pd.Series(group, index=age.index, dtype=object).where(values.notna(), None)


def training_frame(
    submissions: pd.DataFrame, index: ReintegrationIndex, questionnaire: Questionnaire
) -> pd.DataFrame:
    """First surveys joined with their outcome: one row per returnee who has both.

    Returns
    -------
    DataFrame
        ``returnee_key``, ``first_pk``, the subgroup columns (``sex``, ``age_group``,
        ``return_type``), the feature columns, and ``not_sustainable``.
    """
    first = first_surveys(submissions)
    target = outcomes(submissions, index, questionnaire)
    frame = pd.DataFrame(
        {"returnee_key": first["returnee_key"].to_numpy(), "first_pk": first["pk"].to_numpy()}
    )
    frame["age_group"] = age_group(first["age_at_return"], questionnaire).to_numpy()
    feats = features(first, questionnaire).reset_index(drop=True)
    frame = pd.concat([frame, feats], axis=1)
    joined = frame.merge(target[["returnee_key", "not_sustainable"]], on="returnee_key")
    return joined.reset_index(drop=True)


def reasons(
    items: pd.DataFrame, index: ReintegrationIndex, k: int = REASONS
) -> tuple[list[str | None], list[list[str]]]:
    """Why a returnee is at risk: the weakest dimension and the items behind it.

    The items given are taken from the weakest dimension only (the lowest of the economic,
    social and psychosocial scores), so each reason explains the dimension it is shown under.

    Parameters
    ----------
    items : DataFrame
        Coded items of the interviews (one row each).
    index : ReintegrationIndex
        The fitted index whose dimensions and weights score the interview and rank the items.
    k : int, default REASONS
        Items given per interview.

    Returns
    -------
    weakest : list of str or None
        The weakest dimension of each interview (None when it cannot be scored).
    lowest : list of list of str
        Up to ``k`` answered items of the weakest dimension below the best answer (an item at
        its best is not behind a weakness), lowest value first; ties go to the item with the
        larger weight in its dimension, then to spec order. Empty when there is no weakest
        dimension.

    Examples
    --------
    >>> from reintegration.questionnaire import load_questionnaire
    >>> q = load_questionnaire()
    >>> answers = pd.DataFrame([dict.fromkeys(q.item_ids, 1.0)])
    >>> social = [i.id for i in q.items_of("social")]
    >>> answers.loc[0, [social[1], social[3]]] = [0.0, 0.5]
    >>> weakest, lowest = reasons(answers, ReintegrationIndex().fit())
    >>> weakest == ["social"], lowest == [[social[1], social[3]]]
    (True, True)
    """
    dims = index.dimensions_
    scores = index.score_arrays(
        {i: items[i].to_numpy() for d in dims for i in index.item_weights_[d] if i in items}
    )
    weakest = [dims[w] if w >= 0 else None for w in scores["weakest_dimension"].tolist()]
    lowest: list[list[str]] = [[] for _ in weakest]
    for d, dimension in enumerate(dims):
        rows = np.flatnonzero(scores["weakest_dimension"] == d)
        if rows.size == 0:
            continue
        ids: Sequence[str] = list(index.item_weights_[dimension])
        weights = np.array([index.item_weights_[dimension][i] for i in ids])
        values = items.iloc[rows].reindex(columns=list(ids)).to_numpy(dtype=np.float64, copy=True)
        # Not applicable, missing and best answers are never a reason.
        values[(values == NOT_APPLICABLE) | np.isnan(values) | (values >= 1.0)] = np.inf
        # lexsort sorts by the last key first: value, then larger weight, then spec order.
        order = np.lexsort(
            (
                np.broadcast_to(np.arange(len(ids)), values.shape),
                np.broadcast_to(-weights, values.shape),
                values,
            ),
            axis=1,
        )[:, :k]
        chosen = np.take_along_axis(values, order, axis=1)
        for row, picks, vals in zip(rows.tolist(), order, chosen, strict=True):
            lowest[row] = [ids[j] for j, v in zip(picks, vals, strict=True) if np.isfinite(v)]
    return weakest, lowest
