"""The derived index reports its reverse-keyed items (negative loading) instead of hiding them
behind abs(), and the index promotion report counts the returnees it uses (its rows' n) and
the submissions each version leaves unscored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.index_report import reverse_keyed_of, reverse_keyed_sentence
from reintegration.derive import derive_weights
from reintegration.policy import cli_caller
from reintegration.questionnaire import load_questionnaire


def _records(reversed_item: str | None, seed: int = 0) -> pd.DataFrame:
    """Coded items driven by one latent trait per record; ``reversed_item`` runs against it."""
    questionnaire = load_questionnaire()
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=400)
    columns = {}
    for item in questionnaire.items:
        sign = -1.0 if item.id == reversed_item else 1.0
        columns[item.id] = (sign * latent + rng.normal(size=400) > 0).astype(float)
    return pd.DataFrame(columns)


def test_a_reverse_keyed_item_is_reported_not_hidden():
    questionnaire = load_questionnaire()
    item = questionnaire.items_of("social")[1].id
    derived = derive_weights(_records(item), questionnaire)
    table = derived.table().set_index("item")

    assert derived.reverse_keyed == (item,)
    assert table.loc[item, "loading"] < 0 and bool(table.loc[item, "reverse_keyed"])
    assert table.loc[item, "weight"] > 0  # still weighted by its absolute loading
    assert int(table["reverse_keyed"].sum()) == 1
    assert reverse_keyed_of(table.reset_index().to_dict("records")) == [item]
    assert reverse_keyed_sentence(derived.reverse_keyed).startswith(
        f"Reverse-keyed items (negative loading): {item}. Each falls when the other items"
    )


def test_items_that_all_run_the_same_way_have_no_reverse_keyed_item():
    derived = derive_weights(_records(None), load_questionnaire())

    assert derived.reverse_keyed == ()
    assert not derived.table()["reverse_keyed"].any()
    assert reverse_keyed_sentence(()) == "Reverse-keyed items (negative loading): none."


def test_the_built_in_weight_table_has_no_loadings_to_read():
    assert reverse_keyed_of([{"item": "a", "loading": None}, {"item": "b"}]) == []
    assert reverse_keyed_of(None) == []


def test_the_derived_version_names_its_reverse_keyed_items(trained):
    from models import _mlflow, registry
    from models.index_training import REVERSE_KEYED_TAG
    from reintegration.settings import Settings

    done = trained.index
    settings = Settings(home=trained.home, database_url="", mlflow_tracking_uri="")
    client = _mlflow.client(settings)
    run = client.get_run(done["run_id"])
    card = registry.read_artifact(client, done["run_id"], registry.CARD)

    assert done["reverse_keyed"] == reverse_keyed_of(done["weights"])
    expected = ",".join(done["reverse_keyed"]) or "none"
    assert run.data.tags[REVERSE_KEYED_TAG] == expected
    assert run.data.params[REVERSE_KEYED_TAG] == expected
    assert "## Reverse-keyed items" in card
    assert reverse_keyed_sentence(done["reverse_keyed"]) in card
    assert "| reverse-keyed items (negative loading) |" in card


def test_the_index_promotion_report_counts_what_it_uses(registry_home, trained):
    from models import _mlflow, registry
    from models.index_training import champion_index, index_records
    from models.promotion import promote

    settings, engine = registry_home
    questionnaire = load_questionnaire()
    records, _ = index_records(engine, questionnaire)
    client = _mlflow.client(settings)
    current, _ = champion_index(client)
    challenger = registry.load_index(
        client, client.get_model_version(registry.INDEX_MODEL, str(trained.index["version"]))
    )
    items = records[list(questionnaire.item_ids)]
    before = current.transform(items)["composite"].notna()
    after = challenger.transform(items)["composite"].notna()
    min_cell = settings.min_cell

    def published(n: int) -> int:
        return min_cell * int(np.floor(n / min_cell + 0.5))

    done = promote(
        engine,
        "index",
        trained.index["version"],
        reason="field data",
        force=False,
        caller=cli_caller("officer"),
        settings=settings,
    )
    overall = done["rows"][0]
    assert overall["group"] == "overall"
    assert done["n"] == overall["n"] == published(int((before & after).sum()))
    assert done["returnees"] == published(len(records))
    assert done["unscored"] == {
        "champion": published(int((~before).sum())) if (~before).sum() else 0,
        "challenger": published(int((~after).sum())) if (~after).sum() else 0,
    }
    assert done["basis"] == (
        f"{done['n']:,} returnees scored by both versions, latest interview each (of "
        f"{done['returnees']:,} read); unscored: {done['unscored_text']['champion']} under "
        f"{current.label_}, {done['unscored_text']['challenger']} under {challenger.label_}"
    )
    assert done["reverse_keyed"] == trained.index["reverse_keyed"]


def test_a_small_unscored_count_is_said_not_shown(monkeypatch):
    from models import index_report

    assert index_report._size(0, 5) == "none"
    assert index_report._size(3, 5) == "fewer than 5"
    assert index_report._size(48, 5) == "50"
    assert index_report._size(2982, 5) == "2,980"


@pytest.mark.parametrize("loading", [float("nan"), 0.0])
def test_a_missing_or_zero_loading_is_not_reverse_keyed(loading):
    assert reverse_keyed_of([{"item": "a", "loading": loading}]) == []


def test_train_index_on_the_command_line_names_reverse_keyed_items(home, monkeypatch):
    from typer.testing import CliRunner

    from models import index_training
    from reintegration.cli import app

    def fake_train(*args, **kwargs):
        return {
            "version": 2,
            "label": "rss-v2-derived",
            "run_id": "r",
            "n": 300,
            "explained_variance": {"economic": 0.4},
            "zero_variance": [],
            "reverse_keyed": ["soc_2"],
            "correlation": 0.9,
            "champion_label": "rss-v1-provisional",
            "weights": [
                {
                    "dimension": "social",
                    "item": "soc_2",
                    "weight": 0.2,
                    "loading": -0.5,
                    "zero_variance": False,
                    "reverse_keyed": True,
                },
                {
                    "dimension": "social",
                    "item": "soc_1",
                    "weight": 0.8,
                    "loading": 0.7,
                    "zero_variance": False,
                    "reverse_keyed": False,
                },
            ],
            "shift": [],
        }

    monkeypatch.setattr(index_training, "train_index", fake_train)
    result = CliRunner().invoke(app, ["train", "index"])

    assert result.exit_code == 0, result.output
    assert "soc_2 (reverse-keyed)" in result.stdout
    assert "soc_1 (reverse-keyed)" not in result.stdout
    assert (
        "Reverse-keyed items (negative loading): soc_2. Each falls when the other items of its "
        "dimension rise" in " ".join(result.stdout.split())
    )
