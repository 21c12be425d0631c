"""The returnee page's figure: one line per score, a gap where a round has no score."""

from __future__ import annotations

from dashboards.figures.returnee import returnee_trajectory_figure


def test_one_line_per_score_with_a_gap_for_a_missing_round():
    rounds = [
        {
            "survey_round": 1,
            "months_since_return": 2.0,
            "economic": 0.2,
            "social": 0.5,
            "psychosocial": 0.4,
            "composite": 0.37,
        },
        {
            "survey_round": 2,
            "months_since_return": 9.5,
            "economic": None,
            "social": None,
            "psychosocial": None,
            "composite": None,
        },
        {
            "survey_round": 3,
            "months_since_return": 14.0,
            "economic": 0.6,
            "social": 0.7,
            "psychosocial": 0.5,
            "composite": 0.6,
        },
    ]

    fig = returnee_trajectory_figure(rounds, index_version="rss-v1-provisional")

    assert [t.name for t in fig.data] == ["Economic", "Social", "Psychosocial", "Composite"]
    assert list(fig.data[3].x) == [2.0, 9.5, 14.0]
    assert list(fig.data[3].y) == [0.37, None, 0.6] and fig.data[3].connectgaps is False
    assert "rss-v1-provisional" in fig.layout.title.subtitle.text


def test_no_round_says_so():
    fig = returnee_trajectory_figure([], index_version="rss-v1-provisional")
    assert fig.layout.annotations[0].text == "No scored interview"
