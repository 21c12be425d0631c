"""What the attack tests share: the ground truth read from the store, the API as an adversary
sees it, and the judgement of an attack against a guess.

The ground truth is read with plain SQL and pandas from the tables the panel was ingested into,
never through the code under test. Answers are read in both shapes the API may give: exact (a
suppressed cell listed with nulls) and protected (suppressed cells gathered into one cell with
``"other": true``).

An attack is judged as issue 12's acceptance says: over at least :data:`MIN_TARGETS` targets,
for every published score, its mean absolute error must be no smaller than that of guessing the
published mean of the target's group, and a suppressed count must be recovered exactly no more
often than by a guess from the published totals. An attack that learns nothing from the answers
(a cell it needs is hidden, two answers are identical) falls back to the guess, as an adversary
would; so the attack only wins where the answers gave something away.

"Smaller" and "more often" are judged beyond chance: record keys are drawn at random when the
panel is stored, so the protected figures, and the attack's errors, differ from run to run. An
attack that gains nothing over the guess comes out ahead on a figure about half the time; a
plain comparison would make the test fail at random once figures are protected. So the attack
wins only when its advantage is significant at :data:`ALPHA` (one-sided): a paired sign-flip
test of the per-target differences of absolute errors, an exact binomial (McNemar) test of the
counts one recovers and the other does not. Against exact figures every attack wins by far
(p = 5e-5, the floor of the sign-flip test; 1e-6 for the counts). Setting :data:`ALPHA` to 1
gives the plain comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

FIGURES = ("economic", "social", "psychosocial", "composite")
DIMENSIONS = ("sex", "age_group", "return_type", "country")
MIN_TARGETS = 20
MIN_CELL = 5
ALPHA = 0.01
FLIPS = 20_000
API = "/api/v1"


class AttackSucceeded(AssertionError):
    """The attack recovered more than a guess would: protected figures are not in place."""


# -- ground truth -------------------------------------------------------------------------------


def read_truth(engine: sa.Engine, index_version: str, child_below: int) -> pd.DataFrame:
    """Every current interview with its returnee's groups and its scores (NaN when unscored).

    One row per current submission: ``returnee``, ``day`` (interview date, datetime64),
    ``round``, ``assistance``, the :data:`DIMENSIONS`, the :data:`FIGURES` and ``scored``;
    sorted by returnee then interview date.
    """
    sql = sa.text(
        "SELECT s.id, s.returnee_key AS returnee, s.interview_date AS day, "
        "s.survey_round AS round, s.assistance, r.sex, r.age_at_return, r.return_type, r.country, "
        "sc.economic, sc.social, sc.psychosocial, sc.composite "
        "FROM submission s JOIN returnee r ON r.key = s.returnee_key "
        "LEFT JOIN score sc ON sc.submission_pk = s.id AND sc.index_version = :label "
        "WHERE s.current"
    )
    with engine.connect() as conn:
        rows = pd.read_sql(sql, conn, params={"label": index_version})
    rows["day"] = pd.to_datetime(rows["day"])
    rows["age_group"] = np.where(rows["age_at_return"] < child_below, "child", "adult")
    rows["scored"] = rows["composite"].notna()
    return rows.sort_values(["returnee", "day", "id"], ignore_index=True)


def latest(truth: pd.DataFrame, to: Any = None, start: Any = None) -> pd.DataFrame:
    """Each returnee's latest scored interview from ``start`` to ``to`` (dates, included):
    who counts in an answer."""
    rows = truth[truth["scored"]]
    if start is not None:
        rows = rows[rows["day"] >= pd.Timestamp(start)]
    if to is not None:
        rows = rows[rows["day"] <= pd.Timestamp(to)]
    return rows.groupby("returnee", sort=False).tail(1)


def matching(rows: pd.DataFrame, partial: Mapping[str, str]) -> pd.DataFrame:
    """The rows in the cell ``partial`` (group values by dimension)."""
    mask = np.ones(len(rows), dtype=bool)
    for name, value in partial.items():
        mask &= (rows[name] == value).to_numpy()
    return rows[mask]


def scores(row: Mapping[str, Any]) -> dict[str, float]:
    return {f: float(row[f]) for f in FIGURES}


# -- the API as the adversary sees it -----------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One cell of an answer: its group, whether it is the total or the "other groups" cell,
    its count of returnees and its mean per figure (None where hidden)."""

    group: Mapping[str, str | None]
    total: bool
    other: bool
    count: int | None
    means: Mapping[str, float | None]

    @property
    def published(self) -> bool:
        return self.count is not None and all(self.means[f] is not None for f in FIGURES)

    def sum(self, figure: str) -> float:
        """The cell's sum of ``figure`` as published (count times mean)."""
        assert self.count is not None and self.means[figure] is not None
        return self.count * float(self.means[figure])  # type: ignore[arg-type]


@dataclass(frozen=True)
class Answer:
    """An aggregate answer: its cells (the total last) and the filters it says it used."""

    cells: tuple[Cell, ...]
    filters: Mapping[str, Any]

    @property
    def total(self) -> Cell:
        return next(c for c in self.cells if c.total)

    @property
    def other(self) -> Cell | None:
        """The protected answer's "other groups" cell, if it has one."""
        return next((c for c in self.cells if c.other), None)

    def groups(self) -> list[Cell]:
        """The labelled cells (neither the total nor "other")."""
        return [c for c in self.cells if not c.total and not c.other]

    def find(self, **group: str) -> Cell | None:
        """The labelled cell of ``group``, or None when the answer does not list it."""
        return next((c for c in self.groups() if dict(c.group) == group), None)

    def same_figures(self, other: Answer) -> bool:
        return [(c.count, dict(c.means)) for c in self.cells] == [
            (c.count, dict(c.means)) for c in other.cells
        ]


def _cell(raw: Mapping[str, Any]) -> Cell:
    return Cell(
        group=dict(raw["group"]),
        total=bool(raw["total"]),
        other=bool(raw.get("other", False)),
        count=raw["returnees"],
        means={f: raw["figures"][f]["mean"] for f in FIGURES},
    )


@dataclass
class Adversary:
    """A caller of the real HTTP API: a token, the parameters it always sends
    (``protected=true`` for an analyst asking for publishable figures), and its answers kept
    so that attacks sharing a question ask it once."""

    stack: Any
    who: str
    always: Mapping[str, str] = field(default_factory=dict)
    asked: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def get(self, route: str, **params: Any) -> Any:
        """The JSON answer of ``GET /api/v1/<route>``; list values are sent comma-separated."""
        sent = {
            k: ",".join(v) if isinstance(v, list | tuple) else str(v) for k, v in params.items()
        }
        sent.update(self.always)
        key = (route, tuple(sorted(sent.items())))
        if key not in self.asked:
            response = self.stack.get(f"{API}/{route}", self.who, params=sent)
            assert response.status_code == 200, f"{route} {sent}: {response.text}"
            self.asked[key] = response.json()
        return self.asked[key]

    def aggregates(self, **params: Any) -> Answer:
        body = self.get("aggregates", **params)
        return Answer(tuple(_cell(c) for c in body["cells"]), body["filters"])

    def overview(self, **params: Any) -> Any:
        return self.get("overview", **params)


# -- judging ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One person (or suppressed cell) attacked: true values, the attack's estimates and the
    guess from the published mean of the target's group, per figure."""

    label: str
    truth: Mapping[str, float]
    attack: Mapping[str, float]
    guess: Mapping[str, float]


def fallback(found: Mapping[str, float | None], guess: Mapping[str, float]) -> dict[str, float]:
    """The attack's estimate where it has one, the guess where the answers gave nothing."""
    return {f: guess[f] if found.get(f) is None else float(found[f]) for f in guess}  # type: ignore[arg-type]


def errors(targets: Sequence[Target], figure: str) -> tuple[float, float]:
    """Mean absolute error of the attack and of the guess for ``figure``."""
    truth = np.array([t.truth[figure] for t in targets])
    attack = np.array([t.attack[figure] for t in targets])
    guess = np.array([t.guess[figure] for t in targets])
    return float(np.abs(attack - truth).mean()), float(np.abs(guess - truth).mean())


def sign_flip_p(gain: np.ndarray) -> float:
    """One-sided p-value of a mean ``gain`` this large if each gain's sign were chance.

    >>> sign_flip_p(np.zeros(30)), sign_flip_p(np.full(30, 0.1)) < 1e-4
    (1.0, True)
    """
    if not np.any(gain):
        return 1.0
    signs = np.random.default_rng(0).choice((-1.0, 1.0), size=(FLIPS, len(gain)))
    flipped = (signs * gain).mean(axis=1)
    return float((1 + np.sum(flipped >= gain.mean() - 1e-12)) / (FLIPS + 1))


def judge(name: str, targets: Sequence[Target], figures: Iterable[str] = FIGURES) -> str:
    """Raise :class:`AttackSucceeded` when the attack beats the guess on any figure, beyond
    chance (see the module docstring).

    Returns the measured errors (for the test's log) when it does not.
    """
    assert len(targets) >= MIN_TARGETS, f"{name}: only {len(targets)} targets"
    lines, won = [], []
    for figure in figures:
        attack, guess = errors(targets, figure)
        truth = np.array([t.truth[figure] for t in targets])
        gain = np.abs([t.guess[figure] for t in targets] - truth) - np.abs(
            [t.attack[figure] for t in targets] - truth
        )
        p = sign_flip_p(gain)
        lines.append(f"{figure}: attack MAE {attack:.4f}, guess MAE {guess:.4f} (p={p:.2g})")
        if attack < guess and p < ALPHA:
            won.append(figure)
    report = f"{name} over {len(targets)} targets: " + "; ".join(lines)
    if won:
        raise AttackSucceeded(f"{report} (the attack wins on {', '.join(won)})")
    return report


def binomial_p(wins: int, losses: int) -> float:
    """One-sided exact p-value of ``wins`` or more of ``wins + losses`` fair coin tosses.

    >>> binomial_p(0, 0), round(binomial_p(8, 6), 2), binomial_p(20, 0) < 1e-5
    (1.0, 0.4, True)
    """
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def judge_counts(
    name: str, truth: Sequence[int], attack: Sequence[int], guess: Sequence[int]
) -> str:
    """Raise :class:`AttackSucceeded` when the attack recovers suppressed counts exactly more
    often than the guess from the published totals, beyond chance."""
    assert len(truth) >= MIN_TARGETS, f"{name}: only {len(truth)} suppressed counts"
    attack_right = np.asarray(attack) == np.asarray(truth)
    guess_right = np.asarray(guess) == np.asarray(truth)
    p = binomial_p(
        int(np.sum(attack_right & ~guess_right)), int(np.sum(guess_right & ~attack_right))
    )
    hits, guessed = int(attack_right.sum()), int(guess_right.sum())
    report = (
        f"{name}: {hits} of {len(truth)} counts recovered exactly, {guessed} by the guess "
        f"(p={p:.2g})"
    )
    if hits > guessed and p < ALPHA:
        raise AttackSucceeded(report)
    return report


def clip(value: float | None, low: float = 0.0, high: float = 1.0) -> float | None:
    """``value`` within the scores' range (what an adversary knows about any score).

    >>> clip(1.7), clip(-0.2), clip(None)
    (1.0, 0.0, None)
    """
    return None if value is None else float(min(max(value, low), high))
