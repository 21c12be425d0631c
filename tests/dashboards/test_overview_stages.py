"""The Overview says which follow-up rounds its figures mix (issue 13, comparable stages)."""

from __future__ import annotations

from dashboards.components import stage_sentence


def row(value, returnees, *, other=False, label=None):
    return {
        "value": value,
        "returnees": returnees,
        "suppressed": returnees is None,
        "other": other,
        "label": label,
    }


def test_the_overview_names_the_rounds_it_mixes():
    text = stage_sentence({"rounds": [row("1", 454), row("2", 390), row("3", 2155)], "bands": []})
    assert text.startswith("Latest surveys from round 1 (454), round 2 (390), round 3 (2,155)")
    assert "mix follow-up times" in text and "Trajectories" in text


def test_one_round_is_said_plainly_and_hidden_counts_stay_hidden():
    assert stage_sentence({"rounds": [row("2", 80)]}) == "All latest surveys are from round 2 (80)."
    gathered = row(None, 6, other=True, label="other groups: fewer than 5 each")
    text = stage_sentence({"rounds": [row("1", 300), row("3", None), gathered]})
    assert "round 3 (hidden)" in text and "other groups: fewer than 5 each (6)" in text


def test_no_stages_no_sentence():
    assert stage_sentence(None) == "" and stage_sentence({"rounds": []}) == ""
