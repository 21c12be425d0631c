"""Properties of the index that hold for every set of answers (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reintegration.index import NOT_APPLICABLE, ReintegrationIndex
from reintegration.questionnaire import load_questionnaire

Q = load_questionnaire()
INDEX = ReintegrationIndex().fit()
FIGURES = [*Q.index.dimensions, "composite", *(f"coverage_{d}" for d in Q.index.dimensions)]


def item_values(item) -> list[float]:
    """Every coded value an item can take, missing and not applicable included."""
    if item.is_multiple:
        values = [1 - k / len(item.options) for k in range(len(item.options) + 1)]
    else:
        values = [o.value for o in item.options]
    values.append(np.nan)
    if item.not_applicable:
        values.append(NOT_APPLICABLE)
    return values


@st.composite
def coded_frames(draw, min_rows: int = 1, max_rows: int = 20) -> pd.DataFrame:
    n = draw(st.integers(min_rows, max_rows))
    return pd.DataFrame(
        {
            item.id: draw(st.lists(st.sampled_from(item_values(item)), min_size=n, max_size=n))
            for item in Q.items
        }
    )


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


@settings(max_examples=200, deadline=None)
@given(coded_frames())
def test_every_figure_lies_in_the_unit_interval(frame):
    out = INDEX.transform(frame)
    values = out[FIGURES].to_numpy(dtype=float)
    present = values[~np.isnan(values)]
    assert ((present >= 0) & (present <= 1)).all()


@settings(max_examples=200, deadline=None)
@given(coded_frames(max_rows=5), st.data())
def test_improving_one_answer_never_lowers_its_dimension(frame, data):
    item = data.draw(st.sampled_from(Q.items))
    row = data.draw(st.integers(0, len(frame) - 1))
    current = frame.at[row, item.id]
    better = [v for v in item_values(item) if v == v and v != NOT_APPLICABLE]
    if current == current and current != NOT_APPLICABLE:
        better = [v for v in better if v > current]
    else:
        return  # from missing, any answer may raise or lower the score: no order to keep
    if not better:
        return
    improved = frame.copy()
    improved.at[row, item.id] = data.draw(st.sampled_from(better))
    before = INDEX.transform(frame)[item.dimension].iloc[row]
    after = INDEX.transform(improved)[item.dimension].iloc[row]
    if not np.isnan(before):
        assert after >= before


@settings(max_examples=100, deadline=None)
@given(coded_frames(), st.randoms(use_true_random=False))
def test_permuting_columns_changes_nothing(frame, rnd):
    columns = list(frame.columns)
    rnd.shuffle(columns)
    same(INDEX.transform(frame), INDEX.transform(frame[columns]))


@settings(max_examples=100, deadline=None)
@given(coded_frames(min_rows=2), st.randoms(use_true_random=False))
def test_permuting_rows_permutes_the_scores(frame, rnd):
    order = list(range(len(frame)))
    rnd.shuffle(order)
    same(INDEX.transform(frame).iloc[order], INDEX.transform(frame.iloc[order]))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(0, 1)))
def test_vectorised_scores_match_a_row_by_row_reading_of_the_spec(values):
    """The vectorised core against a literal transcription of RSS.md, one row at a time."""
    econ = [i.id for i in Q.items_of("economic")]
    frame = pd.DataFrame({i.id: 1.0 for i in Q.items}, index=range(len(values)))
    frame[econ[0]] = values
    frame.loc[frame.index[::3], econ[1]] = np.nan
    out = INDEX.transform(frame)
    for k in range(len(values)):
        x = [frame.at[k, i] for i in econ]
        observed = [v for v in x if v == v]
        expected = sum(observed) / len(observed)
        assert abs(out["economic"].iloc[k] - round(expected, 10)) < 1e-12
