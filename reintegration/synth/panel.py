"""Synthetic longitudinal panel of RSS interviews, with the ground truth that produced it.

The panel feeds the demo, the tests and the benchmarks, so it is generated column by column
with numpy (no Python loop per row) and is the same for the same seed. Every item id, option
code and metadata choice is read from the questionnaire spec; :class:`SynthParams` holds the
rest (country codes, shares, effect sizes), and the truth dict records all of it.

Design
------
Returnees. Each returnee draws once: country (ISO3, with a country effect) and an admin1 of
that country, sex (mostly male, a share female, a few other/unknown), age at return (about
15 % children, below the spec's ``child_age_below``), return type (voluntary, forced,
unknown), a return date in 2024-2025, the enumerator who follows them (enumerator effects;
a couple of enumerators are anomalous: answers shifted upwards, too little noise and no
missing answers, as fabricated interviews look), the assistance received (independent
draws per type, fewer for forced returnees; ``none`` when nothing), and whether the
household has school-aged children (the not-applicable code otherwise, constant per
returnee).

Rounds. Round ``k`` takes place ``schedule_months[k]`` months after return, plus a uniform
jitter (round 1 at 1-3 months, then about 6, 12, 18 and 24; later rounds continue the last
step). Before each round after the first, a share ``attrition`` of the remaining returnees
drops out for good. ``interview_date = return_date + round(months * 30.4375)`` days. Rows
are ordered by interview date, as an export is. No interview is after ``observed_until`` (or
today, at the latest anywhere on Earth, if that is earlier): returns are drawn no later than
that day less the last round's schedule and jitter, so every round a returnee stays for has
taken place (with two rounds the whole ``return_period`` fits; with more, it ends earlier).

Latent trajectories. For dimension d (economic, social, psychosocial) and round r::

    eta[i, r, d] = intercept_d + country + sex + return type + child + assistance
                   + u[i, d] + (growth_d + g[i, d]) * log(1 + months) + e[i, r, d]

``u`` is an individual effect that persists across rounds (sd ``individual_sd``, correlated
across dimensions), ``g`` an individual growth deviation, ``e`` the per-round noise (sd
``round_noise_sd``, small next to ``individual_sd``), so round 3 is predictable from round 1
and the returnee's characteristics. The directions of the group effects are stylised facts
reported in the reintegration literature (IOM and Samuel Hall, MEASURE, 2017; IOM
Reintegration Handbook, 2019; Koser and Kuschminder, 2015): forced returnees start lower,
mostly in the economic and psychosocial dimensions; women start lower in the economic and
social dimensions; child returnees lower in the psychosocial one; assistance lifts the
dimension it targets (business grant, job placement, vocational training and cash the
economic one; housing, medical, education and legal the social one; psychosocial support the
psychosocial one). The magnitudes are invented for testing and are not estimates.

Items. Item j of dimension d answers ``z = loading_j * eta_d + sqrt(1 - loading_j**2) * noise
+ enumerator shift``; its options, ordered by their spec value, are cut at normal quantiles
shifted by the item's difficulty (binary items too). Loadings run evenly from ``0.9`` (strong)
to ``0.3`` (weak) within each dimension, in an order fixed by ``structure_seed``; the truth
records them. A select-multiple item (``distress_signs``) gets its number of signs k the same
way (value ``1 - k/n``), the k signs chosen at random, codes joined by spaces, the exclusive
code when k is 0. Finally about ``missing_rate`` (5 %) of the answers become a missing code
(``dont_know``/``refused``) and ``blank_rate`` of them a blank cell.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reintegration.coding import latest_today
from reintegration.errors import SynthError
from reintegration.questionnaire import Item, Questionnaire, load_questionnaire

DAYS_PER_MONTH = 30.4375
GENERATOR_VERSION = 1
_STRING = pd.StringDtype("pyarrow", na_value=np.nan)


@dataclass(frozen=True)
class SynthParams:
    """Every number the generator uses; codes are checked against the questionnaire spec.

    Effects are in latent standard units (an item's answer moves one option for roughly one
    unit of ``eta``). Shares keyed by a metadata choice code may leave codes out (share 0).
    """

    country_shares: Mapping[str, float] = field(
        default_factory=lambda: {
            "SEN": 0.2,
            "GIN": 0.25,
            "MLI": 0.15,
            "NGA": 0.2,
            "GMB": 0.1,
            "CIV": 0.1,
        }
    )
    country_effects: Mapping[str, float] = field(
        default_factory=lambda: {
            "SEN": 0.15,
            "GIN": -0.1,
            "MLI": -0.2,
            "NGA": 0.0,
            "GMB": 0.05,
            "CIV": 0.2,
        }
    )
    admin1: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "SEN": ("Dakar", "Thiès", "Kolda", "Tambacounda", "Ziguinchor"),
            "GIN": ("Conakry", "Kindia", "Labé", "Kankan", "N'Zérékoré"),
            "MLI": ("Bamako", "Kayes", "Sikasso", "Ségou", "Mopti"),
            "NGA": ("Lagos", "Edo", "Delta", "Kano", "Ogun"),
            "GMB": ("Banjul", "Kanifing", "West Coast", "Upper River"),
            "CIV": ("Abidjan", "Gbêkê", "Haut-Sassandra", "San-Pédro"),
        }
    )
    enumerators_per_country: int = 8
    enumerator_effect_sd: float = 0.15
    anomalous_enumerators: int = 2
    anomalous_shift: float = 1.0
    anomalous_noise_scale: float = 0.3
    sex_shares: Mapping[str, float] = field(
        default_factory=lambda: {"female": 0.3, "male": 0.68, "other": 0.005, "unknown": 0.015}
    )
    child_share: float = 0.15
    adult_age_mean: float = 29.0
    adult_age_shape: float = 2.0
    return_type_shares: Mapping[str, float] = field(
        default_factory=lambda: {"voluntary": 0.6, "forced": 0.35, "unknown": 0.05}
    )
    return_period: tuple[str, str] = ("2024-01-01", "2025-12-31")
    assistance_rates: Mapping[str, float] = field(
        default_factory=lambda: {
            "business_grant": 0.35,
            "vocational_training": 0.2,
            "job_placement": 0.08,
            "cash": 0.3,
            "housing": 0.1,
            "medical": 0.15,
            "psychosocial": 0.2,
            "education": 0.05,
            "legal": 0.05,
        }
    )
    # Programmes assist voluntary returnees more often (and the truth says so: confounding).
    assistance_factor: Mapping[str, float] = field(default_factory=lambda: {"forced": 0.6})
    interview_mode_shares: Mapping[str, float] = field(
        default_factory=lambda: {"in_person": 0.7, "phone": 0.3}
    )
    schedule_months: tuple[float, ...] = (2.0, 6.0, 12.0, 18.0, 24.0)
    schedule_jitter_months: float = 1.0
    # The day the panel is seen: returns end early enough for every round to be done by then
    # (ingest refuses a date after today). Fixed, so a seed gives the same panel.
    observed_until: str = "2026-11-30"
    attrition: float = 0.15
    intercepts: Mapping[str, float] = field(
        default_factory=lambda: {"economic": -0.7, "social": -0.2, "psychosocial": -0.4}
    )
    growth: Mapping[str, float] = field(
        default_factory=lambda: {"economic": 0.35, "social": 0.15, "psychosocial": 0.2}
    )
    growth_sd: float = 0.08
    individual_sd: float = 0.8
    dimension_correlation: float = 0.4
    round_noise_sd: float = 0.25
    sex_effects: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {"female": {"economic": -0.4, "social": -0.3}}
    )
    return_type_effects: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {
            "forced": {"economic": -0.45, "social": -0.1, "psychosocial": -0.45}
        }
    )
    child_effects: Mapping[str, float] = field(default_factory=lambda: {"psychosocial": -0.35})
    assistance_effects: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {
            "business_grant": {"economic": 0.3},
            "job_placement": {"economic": 0.35},
            "vocational_training": {"economic": 0.2},
            "cash": {"economic": 0.1},
            "housing": {"social": 0.3},
            "medical": {"social": 0.15},
            "education": {"social": 0.15},
            "legal": {"social": 0.15},
            "psychosocial": {"psychosocial": 0.3},
        }
    )
    loading_range: tuple[float, float] = (0.3, 0.9)
    difficulty_range: tuple[float, float] = (-0.5, 0.5)
    # Fixes loadings and difficulties independently of the panel's seed.
    structure_seed: int = 2017
    not_applicable_share: float = 0.3
    missing_rate: float = 0.05
    missing_code_shares: tuple[float, ...] = (0.7, 0.3)
    blank_rate: float = 0.005


def generate_panel(
    returnees: int,
    rounds: int,
    *,
    seed: int = 0,
    questionnaire: Questionnaire | None = None,
    params: SynthParams | None = None,
    weights: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Generate a synthetic panel: one row per interview, in the canonical columns.

    Parameters
    ----------
    returnees : int
        Number of returnees interviewed in round 1 (at least 1).
    rounds : int
        Largest number of rounds a returnee takes part in (at least 1); attrition thins
        the later rounds.
    seed : int, default 0
        Seed of the random generator: the same seed gives the same panel and truth.
    questionnaire : Questionnaire, optional
        The spec to answer; the shipped spec by default.
    params : SynthParams, optional
        The generator's parameters; the documented defaults otherwise.
    weights : bool, default False
        Fill the ``weight`` column with design × retention weights (:func:`survey_weights`);
        they are computed from the panel, not drawn, so the panel of a seed is the same with
        or without them. Blank otherwise.

    Returns
    -------
    frame : pandas.DataFrame
        ``questionnaire.columns`` in order (``weight`` only with ``weights``), every value a
        string (codes, ISO dates); a blank answer is NA.
    truth : dict
        JSON-serialisable ground truth: seed, sizes, parameters, item loadings and
        difficulties, effects, schedule, attrition, missing rate, enumerator effects.

    Raises
    ------
    ValueError
        When a size is below 1 or a parameter names a code the spec does not have.

    Examples
    --------
    >>> frame, truth = generate_panel(100, 3, seed=1)
    >>> len(frame) == truth["interviews"], truth["rounds"]
    (True, 3)
    """
    q = questionnaire or load_questionnaire()
    p = params or SynthParams()
    if returnees < 1 or rounds < 1:
        raise SynthError("returnees and rounds must both be at least 1")
    _check_params(p, q)
    rng = np.random.default_rng(seed)
    people = _draw_returnees(returnees, p, q, rng, _return_window(p, rounds))
    visits = _draw_visits(people, rounds, p, rng)
    eta = np.ascontiguousarray(_latent(people, visits, p, q, rng).T)
    loadings, difficulties = _item_structure(q, p)

    who = visits["who"]
    enumerator = people["enumerator"][who]
    shift = people["enumerator_shift"][enumerator]
    noise_scale = people["enumerator_noise"][enumerator]
    missing_rate = p.missing_rate * people["enumerator_missing"][enumerator]
    blank_rate = p.blank_rate * people["enumerator_missing"][enumerator]
    not_applicable = people["not_applicable"][who]
    columns = _metadata_columns(people, visits, p, q, rng)
    if weights:
        weight_index, weight_texts, weight_truth = survey_weights(people, visits, q)
        columns["weight"] = _strings(weight_index, weight_texts)

    def answer(item: Item, item_rng: np.random.Generator) -> pa.Array:
        return _answers(
            item,
            eta[q.index.dimensions.index(item.dimension)],
            loadings[item.id],
            difficulties[item.id],
            shift=shift,
            noise_scale=noise_scale,
            missing_rate=missing_rate,
            blank_rate=blank_rate,
            not_applicable=not_applicable,
            params=p,
            questionnaire=q,
            rng=item_rng,
        )

    # One child generator per item: the answers do not depend on the number of threads.
    with ThreadPoolExecutor(max_workers=min(len(q.items), os.cpu_count() or 1)) as pool:
        answers = pool.map(answer, q.items, rng.spawn(len(q.items)))
        columns |= dict(zip(q.item_ids, answers, strict=True))
    # A metadata column this generator does not know (a newer spec) is left blank.
    blank = pa.nulls(len(who), pa.string())
    # The weight column only when asked for: a panel without weights is the file it always was.
    frame = pd.DataFrame(
        {
            name: pd.array(columns.get(name, blank), dtype=_STRING)
            for name in q.columns
            if name != "weight" or weights
        }
    )
    truth = _truth(seed, returnees, rounds, visits, people, loadings, difficulties, p, q)
    truth["observed_until"] = _observed_until(p).isoformat()
    truth["return_window"] = [_iso(d) for d in _return_window(p, rounds)]
    if weights:
        truth["weights"] = weight_truth
    return frame, truth


# --- weights ----------------------------------------------------------------------------

SAMPLING_FRACTIONS = (0.05, 0.1, 0.2)
"""Share of a country's returnees sampled, by the country's place in ``country_shares``
(cycled): countries are sampled at different rates, as a survey with a fixed sample per
country does."""
OVERSAMPLED = {"forced": 2.0}
"""Return types sampled at this multiple of their country's fraction."""


def survey_weights(
    people: dict[str, Any], visits: dict[str, np.ndarray], q: Questionnaire
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Design × retention weights of every interview, as a survey team would compute them.

    The design weight of a returnee is the inverse of the share of their country and return
    type that was sampled (:data:`SAMPLING_FRACTIONS`, :data:`OVERSAMPLED`). At round ``r``
    it is multiplied by the inverse of the round's retention in the returnee's weighting
    class (country × return type): interviews in round ``r`` / returnees in round 1, so the
    weights of each round sum to the same total as round 1's within every class.

    Returns
    -------
    index : numpy.ndarray
        Per interview, the position of its weight in ``texts``.
    texts : list of str
        The distinct weights as written (four decimals at most).
    truth : dict
        The fractions and the rule, for the ground truth.
    """
    countries = people["countries"]
    type_codes = [c.code for c in q.metadata_field("return_type").choices]
    fraction = np.array(
        [SAMPLING_FRACTIONS[k % len(SAMPLING_FRACTIONS)] for k in range(len(countries))]
    )
    factor = np.array([OVERSAMPLED.get(c, 1.0) for c in type_codes])
    design = 1.0 / (fraction[people["country"]] * factor[people["rtype"]])
    who, rnd = visits["who"], visits["round"]
    rounds = int(rnd.max()) + 1 if len(rnd) else 1
    cls = people["country"][who] * len(type_codes) + people["rtype"][who]
    counts = np.zeros((len(countries) * len(type_codes), rounds))
    np.add.at(counts, (cls, rnd), 1)
    retention = counts / np.maximum(counts[:, :1], 1)
    weight = np.round(design[who] / retention[cls, rnd], 4)
    distinct, index = np.unique(weight, return_inverse=True)
    truth = {
        "rule": (
            "weight = 1 / (sampling fraction of the country x oversampling of the return type)"
            " / (interviews in the round / round-1 interviews of the same country and return"
            " type)"
        ),
        "sampling_fractions": {c: float(fraction[k]) for k, c in enumerate(countries)},
        "oversampled": dict(OVERSAMPLED),
    }
    return index.reshape(-1), [f"{w:.4f}".rstrip("0").rstrip(".") for w in distinct], truth


# --- drawing ----------------------------------------------------------------------------


def _check_params(p: SynthParams, q: Questionnaire) -> None:
    def codes(name: str) -> list[str]:
        return [c.code for c in q.metadata_field(name).choices]

    def known(table: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise SynthError(f"{what}: {unknown[0]!r} is not one of {', '.join(allowed)}")

    shares = {
        "sex": p.sex_shares,
        "return_type": p.return_type_shares,
        "interview_mode": p.interview_mode_shares,
    }
    for name, table in shares.items():
        known(table, codes(name), f"{name} shares")
        if not math.isclose(sum(table.values()), 1.0):
            raise SynthError(f"{name} shares must sum to 1")
    known(p.assistance_rates, codes("assistance"), "assistance rates")
    known(p.assistance_effects, codes("assistance"), "assistance effects")
    known(p.sex_effects, codes("sex"), "sex effects")
    known(p.return_type_effects, codes("return_type"), "return type effects")
    known(p.assistance_factor, codes("return_type"), "assistance factor")
    by_dimension = (
        p.intercepts,
        p.growth,
        p.child_effects,
        *p.sex_effects.values(),
        *p.return_type_effects.values(),
        *p.assistance_effects.values(),
    )
    for table in by_dimension:
        known(table, q.index.dimensions, "dimension")
    if set(p.country_shares) != set(p.admin1) or not set(p.country_effects) <= set(p.admin1):
        raise SynthError("country shares, effects and admin1 must name the same countries")
    if not math.isclose(sum(p.country_shares.values()), 1.0):
        raise SynthError("country shares must sum to 1")
    if len(p.missing_code_shares) != len(q.missing_codes):
        raise SynthError("missing_code_shares needs one share per missing code of the spec")
    gaps = np.diff(p.schedule_months)
    if len(gaps) == 0 or gaps.min() <= 2 * p.schedule_jitter_months:
        raise SynthError(
            "schedule_months needs two rounds or more, each more than twice the "
            "jitter after the one before"
        )
    if p.schedule_months[0] <= p.schedule_jitter_months:
        raise SynthError("the first round must come after the return")


def _shares(shares: Mapping[str, float], codes: Sequence[str]) -> np.ndarray:
    return np.array([shares.get(c, 0.0) for c in codes], dtype=float)


def _effects(
    table: Mapping[str, Mapping[str, float]], codes: Sequence[str], dims: Sequence[str]
) -> np.ndarray:
    return np.array([[table.get(c, {}).get(d, 0.0) for d in dims] for c in codes])


def _days(iso: str) -> int:
    return int(np.datetime64(iso, "D").astype(np.int64))


def _observed_until(p: SynthParams) -> dt.date:
    """``observed_until``, or today at the latest anywhere on Earth if that is earlier."""
    return min(dt.date.fromisoformat(p.observed_until), latest_today())


def _return_window(p: SynthParams, rounds: int) -> tuple[int, int]:
    """First and last return day (days since 1970): the return period, ending early enough
    that the last round, at its latest jitter, is no later than :func:`_observed_until`."""
    start, end = (_days(d) for d in p.return_period)
    longest = math.ceil((_schedule(p, rounds)[-1] + p.schedule_jitter_months) * DAYS_PER_MONTH)
    end = min(end, _days(_observed_until(p).isoformat()) - longest)
    if end < start:
        raise SynthError(
            f"{rounds} rounds do not fit between the start of the return period "
            f"({p.return_period[0]}) and {_observed_until(p).isoformat()}: ask for fewer rounds "
            "or start the return period earlier"
        )
    return start, end


def _iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _draw_returnees(
    n: int,
    p: SynthParams,
    q: Questionnaire,
    rng: np.random.Generator,
    window: tuple[int, int],
) -> dict[str, Any]:
    countries = list(p.country_shares)
    country = rng.choice(len(countries), n, p=_shares(p.country_shares, countries))
    admin_sizes = np.array([len(p.admin1[c]) for c in countries])
    admin_start = np.concatenate([[0], np.cumsum(admin_sizes)[:-1]])
    admin = admin_start[country] + (rng.random(n) * admin_sizes[country]).astype(np.int64)

    sex_codes = [c.code for c in q.metadata_field("sex").choices]
    sex = rng.choice(len(sex_codes), n, p=_shares(p.sex_shares, sex_codes))
    type_codes = [c.code for c in q.metadata_field("return_type").choices]
    rtype = rng.choice(len(type_codes), n, p=_shares(p.return_type_shares, type_codes))

    child = rng.random(n) < p.child_share
    adult_scale = (p.adult_age_mean - q.child_age_below) / p.adult_age_shape
    adult_age = q.child_age_below + rng.gamma(p.adult_age_shape, adult_scale, n)
    age_max = q.metadata_field("age_at_return").maximum or 110
    age = np.where(
        child, rng.integers(0, q.child_age_below, n), np.minimum(adult_age, age_max)
    ).astype(np.int64)

    start, end = window
    return_day = rng.integers(start, end + 1, n)

    per = p.enumerators_per_country
    n_enum = per * len(countries)
    enumerator = country * per + rng.integers(0, per, n)
    shift = rng.normal(0.0, p.enumerator_effect_sd, n_enum)
    anomalous = np.sort(rng.choice(n_enum, min(p.anomalous_enumerators, n_enum), replace=False))
    shift[anomalous] = p.anomalous_shift
    noise = np.ones(n_enum)
    noise[anomalous] = p.anomalous_noise_scale
    missing = np.ones(n_enum)
    missing[anomalous] = 0.0

    assist = q.metadata_field("assistance")
    assist_codes = [c.code for c in assist.choices]
    factor = np.array([p.assistance_factor.get(c, 1.0) for c in type_codes])[rtype]
    assisted = rng.random((n, len(assist_codes))) < (
        _shares(p.assistance_rates, assist_codes)[None, :] * factor[:, None]
    )

    dims = q.index.dimensions
    common = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, len(dims)))
    rho = p.dimension_correlation
    individual = p.individual_sd * (math.sqrt(rho) * common + math.sqrt(1 - rho) * own)
    level = (
        np.array([p.intercepts.get(d, 0.0) for d in dims])[None, :]
        + np.array([p.country_effects.get(c, 0.0) for c in countries])[country][:, None]
        + _effects(p.sex_effects, sex_codes, dims)[sex]
        + _effects(p.return_type_effects, type_codes, dims)[rtype]
        + child[:, None] * np.array([p.child_effects.get(d, 0.0) for d in dims])[None, :]
        + assisted @ _effects(p.assistance_effects, assist_codes, dims)
        + individual
    )
    growth = np.array([p.growth.get(d, 0.0) for d in dims])
    slope = growth[None, :] + p.growth_sd * rng.standard_normal((n, len(dims)))
    return {
        "countries": countries,
        "country": country,
        "admin": admin,
        "sex": sex,
        "age": age,
        "rtype": rtype,
        "return_day": return_day,
        "enumerator": enumerator,
        "enumerator_ids": [f"{c}-E{k + 1:02d}" for c in countries for k in range(per)],
        "enumerator_shift": shift,
        "enumerator_noise": noise,
        "enumerator_missing": missing,
        "anomalous": anomalous,
        "assisted": assisted,
        "not_applicable": rng.random(n) < p.not_applicable_share,
        "level": level,
        "slope": slope,
    }


def _schedule(p: SynthParams, rounds: int) -> np.ndarray:
    months = list(p.schedule_months)
    step = months[-1] - months[-2] if len(months) > 1 else months[-1]
    while len(months) < rounds:
        months.append(months[-1] + step)
    return np.array(months[:rounds])


def _draw_visits(
    people: dict[str, Any], rounds: int, p: SynthParams, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    n = len(people["country"])
    stays = np.ones((n, rounds), dtype=bool)
    if rounds > 1:
        stays[:, 1:] = np.cumprod(rng.random((n, rounds - 1)) >= p.attrition, axis=1) > 0
    who, rnd = np.nonzero(stays)
    jitter = rng.uniform(-p.schedule_jitter_months, p.schedule_jitter_months, len(who))
    elapsed = np.rint((_schedule(p, rounds)[rnd] + jitter) * DAYS_PER_MONTH).astype(np.int64)
    day = people["return_day"][who] + np.maximum(elapsed, 1)
    order = np.lexsort((rnd, who, day))
    who, rnd, day = who[order], rnd[order], day[order]
    # Months as ingest will compute them from the two dates.
    months = (day - people["return_day"][who]) / DAYS_PER_MONTH
    return {"who": who, "round": rnd, "day": day, "months": months}


def _latent(
    people: dict[str, Any],
    visits: dict[str, np.ndarray],
    p: SynthParams,
    q: Questionnaire,
    rng: np.random.Generator,
) -> np.ndarray:
    who = visits["who"]
    noise = p.round_noise_sd * rng.standard_normal((len(who), len(q.index.dimensions)))
    return people["level"][who] + people["slope"][who] * np.log1p(visits["months"])[:, None] + noise


def _item_structure(q: Questionnaire, p: SynthParams) -> tuple[dict[str, float], dict[str, float]]:
    """Loadings evenly spread from strong to weak within each dimension, in a fixed order."""
    rng = np.random.default_rng(p.structure_seed)
    weak, strong = p.loading_range
    loadings: dict[str, float] = {}
    difficulties: dict[str, float] = {}
    for dim in q.index.dimensions:
        items = q.items_of(dim)
        spread = np.linspace(strong, weak, len(items)) if len(items) > 1 else np.array([strong])
        for item, k in zip(items, rng.permutation(len(items)), strict=True):
            loadings[item.id] = round(float(spread[k]), 4)
            difficulties[item.id] = round(float(rng.uniform(*p.difficulty_range)), 4)
    return loadings, difficulties


# --- building the columns ---------------------------------------------------------------


def _strings(
    indices: np.ndarray,
    labels: Sequence[str],
    blank: np.ndarray | None = None,
) -> pa.Array:
    """``labels[indices]`` as an Arrow string array; ``blank`` rows are null."""
    dictionary = pa.array(list(labels), type=pa.string())
    return pc.take(dictionary, pa.array(indices, mask=blank))


def _pick(rng: np.random.Generator, n: int, shares: np.ndarray) -> np.ndarray:
    return rng.choice(len(shares), n, p=shares / shares.sum())


def _metadata_columns(
    people: dict[str, Any],
    visits: dict[str, np.ndarray],
    p: SynthParams,
    q: Questionnaire,
    rng: np.random.Generator,
) -> dict[str, pa.Array]:
    who, n = visits["who"], len(visits["who"])
    zeros = np.zeros(n, dtype=np.int32)
    consent = q.metadata_field("consent")
    consenting = next(c.code for c in consent.choices if c.code != consent.rejects_row_on)

    first = int(min(people["return_day"].min(), visits["day"].min()))
    last = int(visits["day"].max())
    dates = np.arange(first, last + 1).astype("datetime64[D]").astype(str).tolist()

    countries = people["countries"]
    years = np.arange(first, last + 1).astype("datetime64[D]").astype("datetime64[Y]")
    year_of = years.astype(np.int64) + 1970
    width = max(6, len(str(len(people["country"]))))
    serial = pc.utf8_lpad(
        pc.cast(pa.array(np.arange(1, len(people["country"]) + 1)), pa.string()),
        width=width,
        padding="0",
    )
    case_numbers = pc.binary_join_element_wise(
        _strings(people["country"], countries),
        pc.cast(pa.array(year_of[people["return_day"] - first]), pa.string()),
        serial,
        "-",
    )

    assist = q.metadata_field("assistance")
    codes = [c.code for c in assist.choices]
    bits = people["assisted"].astype(np.int64) @ (1 << np.arange(len(codes)))
    assistance, assist_idx = _bitmask_labels(
        bits, codes, assist.exclusive.code if assist.exclusive else ""
    )
    mode_codes = [c.code for c in q.metadata_field("interview_mode").choices]
    return {
        "submission_id": _uuids(rng, n),
        "consent": _strings(zeros, [consenting]),
        "returnee_id": pc.take(case_numbers, pa.array(who)),
        "interview_date": _strings(visits["day"] - first, dates),
        "return_date": _strings(people["return_day"][who] - first, dates),
        "sex": _strings(people["sex"][who], [c.code for c in q.metadata_field("sex").choices]),
        "age_at_return": _strings(
            people["age"][who], [str(a) for a in range(int(people["age"].max()) + 1)]
        ),
        "return_type": _strings(
            people["rtype"][who], [c.code for c in q.metadata_field("return_type").choices]
        ),
        "country": _strings(people["country"][who], countries),
        "admin1": _strings(people["admin"][who], [a for c in countries for a in p.admin1[c]]),
        "enumerator_id": _strings(people["enumerator"][who], people["enumerator_ids"]),
        "form_version": _strings(zeros, [q.form_version]),
        "interview_mode": _strings(
            _pick(rng, n, _shares(p.interview_mode_shares, mode_codes)), mode_codes
        ),
        "assistance": _strings(assist_idx[who], assistance),
    }


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """Version-4 style UUID strings from the seeded generator (so they repeat with the seed)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    lut = np.array(
        [int.from_bytes(f"{b:02x}".encode(), "little") for b in range(256)], dtype=np.uint16
    )
    hexed = lut[raw].view(np.uint8)
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + stop - start] = hexed[:, start:stop]
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(36), n, [None, pa.py_buffer(text)])
    return fixed.cast(pa.string())


def _bitmask_labels(
    bits: np.ndarray, codes: Sequence[str], empty: str
) -> tuple[list[str], np.ndarray]:
    """Space-joined codes for each distinct bit mask, and each row's index into them."""
    uniq, inverse = np.unique(bits, return_inverse=True)
    labels = [" ".join(c for k, c in enumerate(codes) if (int(b) >> k) & 1) or empty for b in uniq]
    return labels, inverse


def _answers(
    item: Item,
    eta: np.ndarray,
    loading: float,
    difficulty: float,
    *,
    shift: np.ndarray,
    noise_scale: np.ndarray,
    missing_rate: np.ndarray,
    blank_rate: np.ndarray,
    not_applicable: np.ndarray,
    params: SynthParams,
    questionnaire: Questionnaire,
    rng: np.random.Generator,
) -> pa.Array:
    """One item's answers as codes; in-place arithmetic keeps a million rows quick."""
    n = len(eta)
    z = rng.standard_normal(n)
    z *= noise_scale
    z *= math.sqrt(1.0 - loading**2)
    z += loading * eta
    z += shift
    if item.is_multiple:
        signs = [o.code for o in item.options]
        levels = len(signs) + 1
    else:
        ordered = sorted(item.options, key=lambda o: o.value or 0.0)
        levels = len(ordered)
    normal = NormalDist()
    level = np.zeros(n, dtype=np.int16)
    for j in range(1, levels):
        level += z > difficulty + normal.inv_cdf(j / levels)
    if item.is_multiple:
        count = len(signs) - level
        order = np.argsort(rng.random((n, len(signs))), axis=1)
        bits = np.zeros(n, dtype=np.int64)
        for j in range(len(signs)):
            bits |= (j < count).astype(np.int64) << order[:, j]
        exclusive = item.exclusive.code if item.exclusive else ""
        labels, index = _bitmask_labels(bits, signs, exclusive)
    else:
        labels, index = [o.code for o in ordered], level
    if item.not_applicable:
        index = np.where(not_applicable, len(labels), index)
        labels.append(item.not_applicable[0].code)
    u = rng.random(n)
    missing = np.flatnonzero(u < missing_rate)
    shares = np.cumsum(np.asarray(params.missing_code_shares, dtype=float))
    # Below the missing rate, u / rate is uniform again: it also picks the missing code.
    which = np.searchsorted(
        shares[:-1] / shares[-1], u[missing] / missing_rate[missing], side="right"
    )
    index[missing] = len(labels) + which
    labels.extend(o.code for o in questionnaire.missing_codes)
    blank = u >= missing_rate
    blank &= u < missing_rate + blank_rate
    return _strings(index, labels, blank)


def _truth(
    seed: int,
    returnees: int,
    rounds: int,
    visits: dict[str, np.ndarray],
    people: dict[str, Any],
    loadings: dict[str, float],
    difficulties: dict[str, float],
    p: SynthParams,
    q: Questionnaire,
) -> dict[str, Any]:
    params = jsonable(asdict(p))
    ids = people["enumerator_ids"]
    truth = {
        "generator": f"reintegration.synth/{GENERATOR_VERSION}",
        "seed": int(seed),
        "returnees": returnees,
        "rounds": rounds,
        "interviews": len(visits["who"]),
        "interviews_per_round": np.bincount(visits["round"], minlength=rounds).tolist(),
        "spec_version": q.spec_version,
        "form_version": q.form_version,
        "latent_model": (
            "eta[i,r,d] = intercept_d + country + sex + return_type + child"
            " + assistance + u[i,d] + (growth_d + g[i,d]) * log(1 + months)"
            " + e[i,r,d]"
        ),
        "item_model": (
            "z = loading * eta_d + sqrt(1 - loading^2) * noise + enumerator_shift;"
            " options ordered by value, cut at difficulty + normal quantiles"
        ),
        "dimensions": list(q.index.dimensions),
        "loadings": loadings,
        "difficulties": difficulties,
        "effects": {
            "intercept": params["intercepts"],
            "growth_per_log_month": params["growth"],
            "country": params["country_effects"],
            "sex": params["sex_effects"],
            "return_type": params["return_type_effects"],
            "child": params["child_effects"],
            "assistance": params["assistance_effects"],
            "individual_sd": p.individual_sd,
            "round_noise_sd": p.round_noise_sd,
            "growth_sd": p.growth_sd,
            "dimension_correlation": p.dimension_correlation,
        },
        "enumerators": {
            "effects": {
                e: round(float(s), 4) for e, s in zip(ids, people["enumerator_shift"], strict=True)
            },
            "anomalous": [ids[k] for k in people["anomalous"]],
            "anomalous_noise_scale": p.anomalous_noise_scale,
        },
        "schedule": {
            "months": _schedule(p, rounds).tolist(),
            "jitter_months": p.schedule_jitter_months,
        },
        "attrition": p.attrition,
        "missing_rate": p.missing_rate,
        "blank_rate": p.blank_rate,
        "not_applicable_share": p.not_applicable_share,
        "params": params,
    }
    return truth


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars, arrays and tuples turned into plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- writing ----------------------------------------------------------------------------
