"""Derived index weights (RSS.md, "Derived weights"): the first principal component per dimension.

Within each dimension the item weights are the absolute loadings of the first principal
component of the standardised coded items, normalised to sum to 1. The fit uses one record per
returnee (the latest interview in the data window); not-applicable answers count as missing for
the fit, and correlations are pairwise-complete, so a missing answer never becomes a value. An
item with no variance in the window cannot be weighted from data: it keeps the smallest weight
of its dimension and is reported.

The absolute value would hide a reverse-keyed item: one whose loading has the opposite sign to
its dimension's other items (it falls when they rise, e.g. a question coded the wrong way
round). Such items keep their absolute weight, but are listed in ``reverse_keyed`` (and the
weight table's column of that name), which the version's card, tags and promotion report name;
the sign is read after orienting the component so that its loadings sum to a non-negative
number. Pure NumPy and pandas: nothing here knows MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reintegration.errors import ModelError
from reintegration.index import NOT_APPLICABLE, ReintegrationIndex
from reintegration.questionnaire import Questionnaire

MIN_RECORDS = 30
"""Fewest returnees a weight set may be derived from."""


@dataclass(frozen=True)
class DerivedWeights:
    """A weight set derived from data, with the provenance a new index version records.

    Attributes
    ----------
    item_weights : dict
        Dimension -> item id -> weight (each dimension sums to 1).
    dimension_weights : dict
        Dimension -> weight (sum 1).
    loadings : dict
        Dimension -> item id -> loading on the first component (NaN for an item without
        variance); the sign is arbitrary, as for any principal component.
    explained_variance : dict
        Dimension -> share of the standardised items' variance the first component explains.
    zero_variance : tuple of str
        Items without variance in the window (they keep their dimension's smallest weight).
    n : int
        Returnees (records) the weights were derived from.
    observed : dict
        Item id -> number of records with a value for it.
    reverse_keyed : tuple of str
        Items whose loading is negative (the component oriented so its loadings sum to a
        non-negative number): they run against their dimension's other items, which their
        absolute weight would otherwise hide.
    """

    item_weights: dict[str, dict[str, float]]
    dimension_weights: dict[str, float]
    loadings: dict[str, dict[str, float]]
    explained_variance: dict[str, float]
    zero_variance: tuple[str, ...]
    n: int
    observed: dict[str, int] = field(default_factory=dict)
    reverse_keyed: tuple[str, ...] = ()

    def table(self) -> pd.DataFrame:
        """The weight table: dimension, item, loading, weight, observed, zero_variance,
        reverse_keyed."""
        rows = [
            {
                "dimension": dim,
                "item": item,
                "loading": self.loadings[dim][item],
                "weight": weight,
                "observed": self.observed.get(item, 0),
                "zero_variance": item in self.zero_variance,
                "reverse_keyed": item in self.reverse_keyed,
            }
            for dim, items in self.item_weights.items()
            for item, weight in items.items()
        ]
        return pd.DataFrame(rows)

    def index(self, label: str | None = None) -> ReintegrationIndex:
        """The fitted index version these weights define (thresholds as in the spec)."""
        return ReintegrationIndex(
            item_weights=self.item_weights, dimension_weights=self.dimension_weights, label=label
        ).fit()


def latest_per_returnee(frame: pd.DataFrame) -> pd.DataFrame:
    """One record per returnee: their latest interview (by date, then round, then ``pk``).

    Parameters
    ----------
    frame : DataFrame
        Submissions with ``returnee_key``, ``interview_date``, ``survey_round`` and ``pk``.

    Returns
    -------
    DataFrame
        A new frame, one row per returnee.
    """
    ordered = frame.sort_values(["interview_date", "survey_round", "pk"], kind="stable")
    return ordered.groupby("returnee_key", sort=False).tail(1).sort_values("pk")


def _first_component(z: pd.DataFrame) -> tuple[np.ndarray, float]:
    """Loadings and explained share of the first principal component of standardised items."""
    corr = z.corr(min_periods=2).fillna(0.0).to_numpy(copy=True)
    np.fill_diagonal(corr, 1.0)
    eigenvalues, eigenvectors = np.linalg.eigh(corr)
    top = int(np.argmax(eigenvalues))
    vector = eigenvectors[:, top]
    vector = vector if vector.sum() >= 0 else -vector  # a readable sign; weights use |.|
    loadings = vector * np.sqrt(max(eigenvalues[top], 0.0))
    return loadings, float(eigenvalues[top] / corr.shape[0])


def derive_weights(
    records: pd.DataFrame,
    questionnaire: Questionnaire,
    *,
    dimension_weights: Mapping[str, float] | None = None,
    min_records: int = MIN_RECORDS,
) -> DerivedWeights:
    """Derive item weights per dimension from one record per returnee.

    Parameters
    ----------
    records : DataFrame
        One row per returnee with a float column of coded values per item (``NaN`` missing,
        ``NOT_APPLICABLE`` not applicable), e.g. from :func:`latest_per_returnee`.
    questionnaire : Questionnaire
        Which items make up which dimension.
    dimension_weights : mapping, optional
        Dimension -> weight, non-negative and summing to 1; the spec's (1/3 each) by default.
    min_records : int, default MIN_RECORDS
        Fewest records accepted.

    Returns
    -------
    DerivedWeights

    Raises
    ------
    ModelError
        Too few records, or a dimension none of whose items varies.
    IndexParameterError
        Dimension weights that are negative, do not sum to 1 or name other dimensions.

    Examples
    --------
    >>> from reintegration.questionnaire import load_questionnaire
    >>> q = load_questionnaire()
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.normal(size=200)
    >>> records = pd.DataFrame({
    ...     i.id: (latent * (1 + k % 3) + rng.normal(size=200) > 0).astype(float)
    ...     for k, i in enumerate(q.items)})
    >>> weights = derive_weights(records, q)
    >>> round(sum(weights.item_weights["economic"].values()), 6)
    1.0
    """
    n = len(records)
    if n < min_records:
        raise ModelError(
            f"weights need at least {min_records} returnees with an interview in the data "
            f"window; there are {n}"
        )
    spec = questionnaire.index
    chosen = dict(dimension_weights or spec.dimension_weights)
    item_weights: dict[str, dict[str, float]] = {}
    loadings: dict[str, dict[str, float]] = {}
    explained: dict[str, float] = {}
    observed: dict[str, int] = {}
    flat: list[str] = []
    reverse: list[str] = []
    for dim in spec.dimensions:
        ids = [item.id for item in questionnaire.items_of(dim)]
        values = records.reindex(columns=ids).astype("float64")
        values = values.mask(values == NOT_APPLICABLE)
        observed.update({item: int(values[item].notna().sum()) for item in ids})
        sd = values.std(ddof=1)
        varying = [item for item in ids if observed[item] >= 2 and sd[item] > 0]
        if not varying:
            raise ModelError(
                f"no item of the {dim} dimension varies in the data window, so its weights "
                "cannot be derived; widen the window"
            )
        z = (values[varying] - values[varying].mean()) / sd[varying]
        vector, share = _first_component(z)
        raw = dict(zip(varying, np.abs(vector), strict=True))
        reverse.extend(item for item, v in zip(varying, vector, strict=True) if v < 0)
        floor = min(raw.values())
        still = [item for item in ids if item not in raw]
        flat.extend(still)
        raw.update(dict.fromkeys(still, floor))
        if sum(raw.values()) <= 0:
            raw = dict.fromkeys(ids, 1.0)
        total = sum(raw.values())
        item_weights[dim] = {item: float(raw[item] / total) for item in ids}
        loadings[dim] = {
            item: float(dict(zip(varying, vector, strict=True)).get(item, np.nan)) for item in ids
        }
        explained[dim] = share
    derived = DerivedWeights(
        item_weights=item_weights,
        dimension_weights={d: float(chosen[d]) for d in chosen},
        loadings=loadings,
        explained_variance=explained,
        zero_variance=tuple(flat),
        n=n,
        observed=observed,
        reverse_keyed=tuple(reverse),
    )
    derived.index()  # checks the dimension weights (IndexParameterError) before anyone uses them
    return derived


def parse_dimension_weights(text: str, questionnaire: Questionnaire) -> dict[str, float]:
    """Parse ``economic=0.5,social=0.25,psychosocial=0.25`` into dimension weights.

    Raises
    ------
    ModelError
        An unknown dimension, a value that is not a number, a dimension left out, negative
        weights, or weights that do not sum to 1.

    Examples
    --------
    >>> from reintegration.questionnaire import load_questionnaire
    >>> q = load_questionnaire()
    >>> parse_dimension_weights("economic=0.5, social=0.25, psychosocial=0.25", q)
    {'economic': 0.5, 'social': 0.25, 'psychosocial': 0.25}
    """
    dims = questionnaire.index.dimensions
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in dims:
            raise ModelError(
                f"--dimension-weights: {name!r} is not a dimension; use {', '.join(dims)}"
            )
        try:
            out[name] = float(value)
        except ValueError:
            raise ModelError(
                f"--dimension-weights: {value.strip()!r} for {name} is not a number"
            ) from None
    missing = [d for d in dims if d not in out]
    if missing:
        raise ModelError(f"--dimension-weights: give a weight for {', '.join(missing)} too")
    if any(w < 0 for w in out.values()) or not np.isclose(sum(out.values()), 1.0, atol=1e-9):
        raise ModelError("--dimension-weights: weights must be non-negative and sum to 1")
    return {d: out[d] for d in dims}
