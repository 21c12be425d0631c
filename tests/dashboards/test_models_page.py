"""The models page through its callbacks, over a registry stand-in: versions with their aliases,
headline and subgroup metrics (small groups not named, sizes rounded), calibration, drift,
index weights and the card; and what it says when nothing is registered."""

from __future__ import annotations

import pytest

from tests.dashboards.conftest import (
    LABEL,
    RISK_MODEL,
    Client,
    array,
    components,
    registry_with_models,
)
from tests.dashboards.test_aggregate_pages import outputs


@pytest.fixture
def with_models(own_dashboard):
    own_dashboard.services.lifecycle = registry_with_models(own_dashboard.services.engine)
    return own_dashboard


def show(client, version, kind):
    return outputs(
        client.callback(
            "models-card.children",
            {"models-version-control.value": version},
            {"models-model-control.value": kind},
        )
    )


def test_the_page_opens_on_the_risk_champion(with_models):
    client = Client(with_models)
    client.login("analyst")
    layout = client.page("/models").get_json()
    version = [c for c in components(layout) if c["props"]["id"] == "models-version-control"][0]
    assert version["props"]["value"] == 1
    assert [o["label"] for o in version["props"]["options"]] == ["v2 · challenger", "v1 · champion"]
    picked = outputs(
        client.callback(
            "models-versions-table.data",
            {"models-model-control.value": "risk"},
            {"models-version-control.value": None},
        )
    )
    rows = picked["models-versions-table.data"]
    assert [(r["version"], r["aliases"], r["headline"]) for r in rows] == [
        (2, "challenger", "ROC AUC 0.770"),
        (1, "champion", "ROC AUC 0.780"),
    ]


def test_a_risk_version_shows_its_metrics_calibration_subgroups_and_card(with_models):
    client = Client(with_models)
    client.login("admin")
    answer = show(client, 1, "risk")
    assert answer["models-query.data"] == "?model=risk&version=1"
    text = str(answer["models-headlines.children"])
    assert "0.780" in text and "0.740" in text  # ROC AUC and the baseline's
    calibration = answer["models-calibration-graph.figure"]
    assert len(array(calibration["data"][1]["x"])) == 10
    assert calibration["layout"]["title"]["subtitle"]["text"] == (
        f"Index version {LABEL} · {RISK_MODEL} v1"
    )
    subgroups = answer["models-subgroups-graph.figure"]
    bars = [t for t in subgroups["data"] if t["type"] == "bar"][0]
    assert list(bars["y"]) == ["overall", "sex=female", "sex=male"]  # intersections: in the card
    # The stand-in's evaluation is old-style: sex=other (3 returnees) is not named at all, and
    # sizes are rounded to a multiple of 5 (903 held out), so 905 - 300 - 600 gives nothing.
    assert list(bars["text"]) == ["n = 905", "n = 300", "n = 600"]
    assert "sex=other" not in str(subgroups)
    assert not [t for t in subgroups["data"] if t["type"] == "scatter"]
    assert answer["models-card.children"].startswith("# Risk model v1")
    assert answer["models-weights-section.style"] == {"display": "none"}
    drift = answer["models-drift-graph.figure"]
    assert drift["layout"]["title"]["text"] == "Drift of each item in the latest batch"
    assert array([t for t in drift["data"] if t["type"] == "bar"][0]["x"])[0] == pytest.approx(0.3)


def test_an_index_version_shows_its_weights(with_models, questionnaire):
    client = Client(with_models)
    client.login("analyst")
    answer = show(client, 1, "index")
    weights = answer["models-weights-table.data"]
    assert len(weights) == len(questionnaire.items)
    first = questionnaire.items[0]
    row = next(r for r in weights if r["item"] == first.id)
    assert row["dimension"] == first.dimension and row["dimension_weight"] == "0.333"
    in_dimension = len(questionnaire.items_of(first.dimension))
    assert row["share"] == f"{1 / in_dimension:.1%}"  # the spec weighs items equally
    assert row["question"] and answer["models-weights-section.style"] == {}
    assert answer["models-calibration-card.style"] == {"display": "none"}


def test_the_subgroup_csv_names_no_group_under_the_threshold(with_models):
    client = Client(with_models)
    client.login("analyst")
    download = outputs(
        client.callback(
            "models-subgroups-csv.data",
            {"models-subgroups-csv-button.n_clicks": 1},
            {"models-version-control.value": 1, "models-model-control.value": "risk"},
        )
    )["models-subgroups-csv.data"]
    lines = download["content"].splitlines()
    assert lines[0] == "group,n,roc_auc,model,model_version,index_version"
    assert lines[1:] == [
        f"overall,905,0.78,{RISK_MODEL},1,{LABEL}",
        f"sex=female,300,0.74,{RISK_MODEL},1,{LABEL}",
        f"sex=male,600,0.79,{RISK_MODEL},1,{LABEL}",
    ]
    assert "sex=other" not in download["content"]


def test_the_page_says_small_groups_are_not_listed_and_sizes_rounded(with_models):
    client = Client(with_models)
    client.login("analyst")
    layout = client.page("/models").get_json()
    assert (
        "Groups with fewer than 5 returnees are not listed, and numbers of returnees are "
        "rounded to a multiple of 5, so that no group can be worked out from the others."
    ) in str(layout)


def test_without_a_registered_model_the_page_says_how_to_train_one(client):
    client.login("analyst")
    answer = show(client, None, "risk")
    assert (
        "No version of reintegration-risk is registered yet: train one with "
        "`reintegration train risk`."
    ) in str(answer["models-headlines.children"])


def test_a_manager_cannot_read_model_callbacks(with_models):
    client = Client(with_models)
    client.login("manager")
    response = client.callback(
        "models-card.children",
        {"models-version-control.value": 1},
        {"models-model-control.value": "risk"},
    )
    assert response.status_code == 204


def test_an_old_card_and_calibration_csv_are_served_without_small_groups(with_models):
    lifecycle = with_models.services.lifecycle
    lifecycle.cards[(RISK_MODEL, 1)] = "\n".join(
        [
            "# Risk model v1",
            "",
            "|  | value |",
            "|---|---|",
            "| held-out returnees (grouped by returnee) | 903 |",
            "",
            "| group | n | ROC AUC | average precision | Brier score |",
            "|---|---|---|---|---|",
            "| sex=male | 600 | 0.790 | – | – |",
            "| sex=other | fewer than 5 | insufficient data |  |  |",
        ]
    )
    lifecycle.runs["risk-1"]["evaluation"]["calibration"][9]["n"] = 2  # a bin of two people
    client = Client(with_models)
    client.login("analyst")
    card = show(client, 1, "risk")["models-card.children"]
    assert "sex=other" not in card and "903" not in card
    assert "| held-out returnees (grouped by returnee) | 905 |" in card
    assert "| sex=female | 300 | 0.740 |" in card and "| sex=male | 600 | 0.790 |" in card
    assert "Groups with fewer than 5 returnees are not listed" in card
    download = outputs(
        client.callback(
            "models-calibration-csv.data",
            {"models-calibration-csv-button.n_clicks": 1},
            {"models-version-control.value": 1, "models-model-control.value": "risk"},
        )
    )["models-calibration-csv.data"]
    lines = download["content"].splitlines()
    assert lines[0].startswith("bin_low,bin_high,n,mean_predicted,observed")
    assert len(lines) == 1 + 9 and not [x for x in lines[1:] if x.startswith("0.9,")]
    assert all(line.split(",")[2] == "40" for line in lines[1:])
