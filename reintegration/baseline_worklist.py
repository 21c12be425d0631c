"""The worklist without a promoted risk model: ranked by the baseline rule.

DESIGN.md, "Models and versions": a risk model is promoted only when it beats the baseline rule,
``risk = 1 - the composite of the returnee's first survey``; until one is, the worklist ranks
by that rule and says so (:data:`BASELINE_NOTE`). The first survey is the one the risk model
uses (:func:`reintegration.risk_features.first_surveys`: a returnee's first interview, when it
took place within 4 months of return), scored by the champion index; a returnee whose first
survey has no composite is not ranked. Bands are the analyst's absolute thresholds
(``REINTEGRATION_RISK_BANDS``) applied to the rule's risk, which is a ranking score and not a
calibrated probability. Each row names the first survey's weakest dimension and its
lowest-scoring items of that dimension, as a model's rows do (:mod:`reintegration.worklist`).
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from reintegration.index import ReintegrationIndex
from reintegration.users import User
from reintegration.worklist import BASELINE_TARGET, RiskBands, RiskSource, WorklistPage, ranked

BASELINE_NOTE = "ranked by the baseline rule (1 − first-survey composite): no promoted risk model"
__all__ = ["BASELINE_NOTE", "BASELINE_TARGET", "baseline_worklist"]


def baseline_worklist(
    engine: sa.Engine,
    *,
    caller: User,
    index: ReintegrationIndex,
    index_version: str,
    bands: tuple[float, float],
    countries: Collection[str] | None = None,
    sex: Collection[str] | None = None,
    age_group: Collection[str] | None = None,
    return_type: Collection[str] | None = None,
    band: Collection[str] | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> WorklistPage:
    """Returnees ranked by 1 - their first survey's composite, highest risk first.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    caller : User
        Who asks (ROW_LEVEL); the rows stay within their countries. The read is audited
        (``worklist_read``, target ``baseline rule <index label>``).
    index : ReintegrationIndex
        The champion index (its weights rank the items given as reasons).
    index_version : str
        Its label: the stored scores whose composite ranks.
    bands : tuple of float
        Risk from which a returnee is medium, and high (``Settings.risk_band_limits``).
    countries, sex, age_group, return_type, band : collections of str, optional
        Keep only these; None keeps every value.
    limit, offset : int
        The page (``limit=None``: every row).

    Returns
    -------
    WorklistPage
        As :func:`reintegration.casework.worklist`; ``probability`` is the rule's risk
        (1 - composite) and ``band`` its band. Ties in the rule's risk are ties in the
        composite too: they go to the returnee surveyed longest ago.

    Raises
    ------
    Forbidden
        The caller's role may not see row-level data.
    """
    return ranked(
        engine,
        caller=caller,
        source=RiskSource(),
        index=index,
        index_version=index_version,
        bands=RiskBands(*bands),
        countries=countries,
        sex=sex,
        age_group=age_group,
        return_type=return_type,
        band=band,
        limit=limit,
        offset=offset,
    )
