"""The questionnaire spec: loaded once, checked, and a malformed spec names the item at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reintegration.errors import SpecError
from reintegration.questionnaire import DEFAULT_SPEC, load_questionnaire

RSS_ITEMS = {
    "economic": 8,
    "social": 8,
    "psychosocial": 10,
}


def test_spec_holds_every_item_of_rss_md(questionnaire):
    assert {d: len(questionnaire.items_of(d)) for d in questionnaire.index.dimensions} == RSS_ITEMS
    assert questionnaire.index.label == "rss-v1-provisional"
    assert [m.code for m in questionnaire.missing_codes] == ["dont_know", "refused"]
    for item in questionnaire.items:
        assert item.weight == 1.0
        assert set(item.question) == {"en", "fr", "ar"}
        for option in item.options:
            assert set(option.labels) == {"en", "fr", "ar"}


def test_loading_is_cached(questionnaire):
    assert load_questionnaire() is questionnaire


def test_select_multiple_rule_is_in_the_spec(questionnaire):
    (item,) = [i for i in questionnaire.items if i.is_multiple]
    assert item.exclusive is not None and item.exclusive.code == "none"
    assert len(item.options) == 7 and item.value_rule == "one_minus_share"


def mutate(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(DEFAULT_SPEC.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def item(raw, item_id):
    return next(i for i in raw["items"] if i["id"] == item_id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: item(r, "can_borrow")["question"].pop("fr"),
            "item can_borrow, question: the fr label is missing or not text",
        ),
        (
            lambda r: item(r, "can_borrow").update(scale="yes_maybe"),
            "item can_borrow: scale 'yes_maybe' is not defined",
        ),
        (
            lambda r: item(r, "can_borrow").update(dimension="spiritual"),
            "item can_borrow: dimension 'spiritual' is not one of economic, social, psychosocial",
        ),
        (
            lambda r: item(r, "can_borrow").update(weight=-1),
            "item can_borrow: weight must be positive",
        ),
        (lambda r: item(r, "can_borrow").pop("weight"), "item can_borrow: 'weight' is missing"),
        (
            lambda r: r["items"].append(dict(item(r, "can_borrow"))),
            "item can_borrow: the id appears twice in the spec",
        ),
        (
            lambda r: item(r, "distress_signs").update(value_rule="sum"),
            "item distress_signs: value_rule 'sum' is not one of one_minus_share",
        ),
        (
            lambda r: item(r, "distress_signs")["choices"].append(
                {"code": "none", "label": {"en": "x", "fr": "y", "ar": "z"}}
            ),
            "item distress_signs: option code 'none' appears twice",
        ),
        (
            lambda r: item(r, "children_in_school")["not_applicable"][0].update(code=True),
            "item children_in_school: option code True must be text without spaces (quote yes/no)",
        ),
        (
            lambda r: r["scales"]["yes_no"][0].update(value=2),
            "scale yes_no, option yes: value 2.0 is outside [0, 1]",
        ),
        (
            lambda r: r["index"]["dimension_weights"].update(economic="1/2"),
            "index: dimension weights must be non-negative and sum to 1",
        ),
        (
            lambda r: r["index"].update(medium_from=0.9),
            "index: medium_from must not exceed high_from",
        ),
        (lambda r: r.pop("missing_codes"), "the spec: 'missing_codes' is missing"),
        (
            lambda r: r["metadata"][0].update(kind="uuid"),
            "metadata column submission_id: kind 'uuid' is not one of",
        ),
    ],
)
def test_a_malformed_spec_fails_naming_the_item(tmp_path, change, message):
    with pytest.raises(SpecError) as caught:
        load_questionnaire(mutate(tmp_path, change))
    assert str(caught.value).startswith(message)


def test_an_unreadable_spec_is_a_spec_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("items: [unclosed", encoding="utf-8")
    with pytest.raises(SpecError, match="cannot be read"):
        load_questionnaire(path)


def test_an_ambiguous_answer_is_refused(tmp_path):
    from reintegration.coding import answer_table

    def clash(raw):
        # "Good" would mean both good and very_good.
        raw["scales"]["quality5"][0]["label"]["fr"] = "Good"

    spec = load_questionnaire(mutate(tmp_path, clash))
    with pytest.raises(
        SpecError, match="item housing_access: the answer 'good' would mean two different options"
    ):
        answer_table(spec.item("housing_access"), spec)


def test_no_item_code_or_weight_is_a_literal_in_python_outside_the_loader():
    """Habit 2 of STYLE.md: adding an item is an edit to the spec, not to the code."""
    q = load_questionnaire()
    words = {i.id for i in q.items} | {
        o.code for i in q.items for o in i.options if len(o.code) > 3
    }
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for package in ("reintegration", "models", "api", "dashboards"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            offenders += [
                f"{path.name}: {w}" for w in sorted(words) if f'"{w}"' in text or f"'{w}'" in text
            ]
    assert offenders == []
