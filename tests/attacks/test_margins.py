"""Attack 3: the linear system of published margins.

The adversary asks every grouping of up to three of sex, age group, return type and country,
unfiltered and with every one-value filter on a dimension outside the grouping (the values whose
one-dimension margin is published), and writes each published count, and each published sum
(count times mean) of every score, as an equation over the cells of the full cross-classification
(sex x age group x return type x country). A group an answer does not list is empty (exact
answers list every non-empty group, suppressed ones with nulls); in a protected answer the groups
it does not list add up to its "other groups" cell. Least squares then gives every suppressed
cell whose count is a combination of the published ones: its count and its mean of each score.

Targets: every cell of those groupings (up to three dimensions) with 1 to 4 scored returnees,
once per set of returnees. A cell the equations do not fix gets the guess: for its means, those
of the smallest published group holding it; for its count, what the published groups of its
grouping leave of the total, spread over the hidden groups.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.attacks._attack import (
    DIMENSIONS,
    FIGURES,
    MIN_CELL,
    Adversary,
    Answer,
    Target,
    clip,
    fallback,
    judge,
    judge_counts,
    latest,
)

log = logging.getLogger(__name__)
GROUPINGS = [list(g) for k in (1, 2, 3) for g in combinations(DIMENSIONS, k)]


@dataclass
class Cross:
    """The cells of the full cross-classification, one column per cell, and the adversary's
    equations over them: one row per distinct set of cells, its published values averaged
    (count, then the sum of each figure); and each published group's count and means."""

    domain: dict[str, list[str]]
    members: dict[tuple[str, str], np.ndarray]
    rows: dict[bytes, tuple[np.ndarray, list[np.ndarray]]]
    published: dict[frozenset[tuple[str, Any]], tuple[int, dict[str, float]]]

    @classmethod
    def of(cls, domain: dict[str, list[str]]) -> Cross:
        cells = np.array(list(product(*domain.values())), dtype=object).reshape(-1, len(domain))
        members = {
            (name, value): cells[:, k] == value
            for k, name in enumerate(domain)
            for value in domain[name]
        }
        return cls(domain, members, {}, {})

    def mask(self, partial: Mapping[str, Any]) -> np.ndarray:
        """The cells in the group ``partial`` (values by dimension)."""
        size = len(next(iter(self.members.values())))
        mask = np.ones(size, dtype=bool)
        for name, value in partial.items():
            inside = self.members.get((name, value))
            mask &= inside if inside is not None else False
        return mask

    def add(self, mask: np.ndarray, values: np.ndarray) -> None:
        key = mask.tobytes()
        self.rows.setdefault(key, (mask, []))[1].append(values)

    def system(self) -> tuple[np.ndarray, np.ndarray]:
        a = np.array([mask for mask, _ in self.rows.values()], dtype=float)
        b = np.array([np.mean(values, axis=0) for _, values in self.rows.values()])
        return a, b


def published_values(cell: Any) -> np.ndarray | None:
    """Count and the sum of each figure of a published cell; zeros for a true zero."""
    if cell.count == 0:
        return np.zeros(1 + len(FIGURES))
    if not cell.published:
        return None
    return np.array([cell.count, *(cell.sum(f) for f in FIGURES)])


def read_answer(cross: Cross, answer: Answer, grouping: list[str], where: dict[str, str]) -> None:
    """The equations an answer gives: its total, its published groups, and its unlisted
    groups (each empty, or together the "other groups" cell)."""
    for cell in (answer.total, *answer.groups()):
        values = published_values(cell)
        group = {} if cell.total else dict(cell.group)
        if values is not None:
            cross.add(cross.mask({**where, **group}), values)
        if cell.published and cell.count is not None:
            means = {f: float(cell.means[f]) for f in FIGURES}  # type: ignore[arg-type]
            cross.published[frozenset({**where, **group}.items())] = (cell.count, means)
    listed = {tuple(c.group[g] for g in grouping) for c in answer.groups()}
    unlisted = [v for v in product(*(cross.domain[g] for g in grouping)) if v not in listed]
    masks = [cross.mask({**where, **dict(zip(grouping, v, strict=True))}) for v in unlisted]
    other = answer.other
    if other is None:
        for mask in masks:
            cross.add(mask, np.zeros(1 + len(FIGURES)))
    elif masks and (values := published_values(other)) is not None:
        cross.add(np.logical_or.reduce(masks), values)


def ask_everything(adversary: Adversary, cross: Cross) -> None:
    """Every grouping up to three dimensions, unfiltered and with one-value filters."""
    filters: list[tuple[str, str]] = []
    for name in DIMENSIONS:
        margin = adversary.aggregates(by=[name])
        filters += [(name, str(c.group[name])) for c in margin.groups() if c.published]
    for grouping in GROUPINGS:
        read_answer(cross, adversary.aggregates(by=grouping), grouping, {})
        for name, value in filters:
            if name not in grouping:
                answer = adversary.aggregates(by=grouping, **{name: value})
                read_answer(cross, answer, grouping, {name: value})


@dataclass(frozen=True)
class Solution:
    """The least-squares (minimum-norm) cell values, and what the equations fix: the cells
    known to be empty and a basis of the row space over the others."""

    values: np.ndarray
    unknown: np.ndarray
    basis: np.ndarray

    def fixes(self, t: np.ndarray) -> bool:
        """Whether the sum over the cells ``t`` follows from the equations."""
        part = t[self.unknown]
        return bool(np.linalg.norm(part - self.basis.T @ (self.basis @ part)) < 1e-6)

    def value(self, t: np.ndarray) -> np.ndarray:
        return t @ self.values


def solve(a: np.ndarray, b: np.ndarray) -> Solution:
    """Least squares over the cells not known to be empty (a cell in an equation of count 0
    is empty, counts being never negative)."""
    zero = b[:, 0] == 0
    unknown = ~a[zero].any(axis=0)
    a, b = a[~zero][:, unknown], b[~zero]
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    rank = int(np.sum(s > s[0] * 1e-10))
    values = np.zeros((len(unknown), b.shape[1]))
    values[unknown] = vt[:rank].T @ ((u[:, :rank].T @ b) / s[:rank, None])
    return Solution(values, unknown, vt[:rank])


@dataclass(frozen=True)
class Small:
    """A cell of 1 to 4 scored returnees: its group, true count and true means."""

    group: dict[str, str]
    count: int
    means: dict[str, float]


def small_cells(truth: pd.DataFrame) -> list[Small]:
    """Every cell of 1 to 4 scored returnees, once per set of returnees (a cell and a finer
    one holding the same people are one target, the coarser grouping first)."""
    counted = latest(truth)
    out, seen = [], set()
    for grouping in GROUPINGS:
        for key, rows in counted.groupby(grouping):
            people = frozenset(rows["returnee"])
            if 0 < len(rows) < MIN_CELL and people not in seen:
                seen.add(people)
                group = dict(zip(grouping, key, strict=True))
                out.append(Small(group, len(rows), {f: float(rows[f].mean()) for f in FIGURES}))
    return out


def guesses(adversary: Adversary, cross: Cross, small: Small) -> tuple[int, dict[str, float]]:
    """The count: the cell's own when its grouping's answer publishes it (a protected answer
    may publish a small cell, perturbed), else what the published groups leave of the total,
    spread over the hidden groups. The means: those of the smallest published group holding
    the cell, in any answer (the cell itself, a margin, a filtered total, everyone)."""
    holding = [
        found for group, found in cross.published.items() if group <= frozenset(small.group.items())
    ]
    means = min(holding, key=lambda found: found[0])[1]
    grouping = list(small.group)
    answer = adversary.aggregates(by=grouping)
    own = answer.find(**small.group)
    if own is not None and own.count is not None:
        return own.count, means
    listed = [c for c in answer.groups() if c.count is not None]
    hidden = [c for c in answer.groups() if c.count is None]
    if answer.other is not None:
        every = int(np.prod([len(cross.domain[g]) for g in grouping]))
        hidden_groups = every - len(answer.groups())
    else:
        hidden_groups = len(hidden)
    count = 1
    if answer.total.count is not None:
        left = answer.total.count - sum(c.count or 0 for c in listed)
        count = int(np.clip(round(left / max(hidden_groups, 1)), 1, MIN_CELL - 1))
    return count, means


def margins_attack(adversary: Adversary, truth: pd.DataFrame) -> tuple[list[Target], list[Any]]:
    """Every small cell attacked: (mean targets, [(true, attacked, guessed count, whether the
    published margins fix it)])."""
    domain = {d: sorted(truth[d].dropna().unique().tolist()) for d in DIMENSIONS}
    cross = Cross.of(domain)
    ask_everything(adversary, cross)
    solution = solve(*cross.system())
    targets, counts = [], []
    for small in small_cells(truth):
        t = cross.mask(small.group).astype(float)
        fixed = solution.fixes(t)
        count_guess, mean_guess = guesses(adversary, cross, small)
        found: dict[str, float | None] = dict.fromkeys(FIGURES)
        count = count_guess
        if fixed:
            values = solution.value(t)
            count = int(round(values[0]))
            if values[0] >= 0.5:
                found = {f: clip(values[1 + k] / values[0]) for k, f in enumerate(FIGURES)}
        counts.append((small.count, count, count_guess, bool(fixed)))
        label = f"{small.group} (n={small.count})"
        targets.append(Target(label, small.means, fallback(found, mean_guess), mean_guess))
    return targets, counts


@pytest.fixture(scope="module")
def margins(attack_panel: Any, adversary: Adversary) -> tuple[list[Target], list[Any]]:
    """The attack run once per adversary, for both tests."""
    return margins_attack(adversary, attack_panel.truth)


def test_margins_give_no_suppressed_mean(margins: tuple[list[Target], list[Any]]):
    """The suppressed cells' means, from the linear system of the published margins."""
    log.info(judge("linear system of margins: means of suppressed cells", margins[0]))


def test_margins_give_no_suppressed_count(margins: tuple[list[Target], list[Any]]):
    """The suppressed cells' counts, from the same system, against the guess from totals."""
    truth, attack, guess, fixed = zip(*margins[1], strict=True)
    name = f"linear system of margins ({sum(fixed)} cells fixed by the equations)"
    log.info(judge_counts(name, truth, attack, guess))
