"""The models page's actions through its callbacks, over a registry stand-in: train with the
job's progress, compare two versions, preview a promotion (overall and by group), confirm or
cancel it; and none of it for a manager."""

from __future__ import annotations

from typing import Any

import pytest

from reintegration.errors import ModelError, PromotionRefused
from reintegration.policy import require
from reintegration.roles import Capability
from tests.dashboards.conftest import (
    RISK_MODEL,
    Client,
    components,
    registry_with_models,
    response_text,
)
from tests.dashboards.test_aggregate_pages import outputs

INDEX = "rss-index"


def _row(by, value, n, before, after, composite=(0.512, 0.534)):
    row = {"group": "overall" if by is None else f"{by}={value}", "by": by, "value": value}
    row["n"] = n
    for measure, (a, b) in {
        "economic": (0.5, 0.52),
        "social": (0.55, 0.56),
        "psychosocial": (0.49, 0.5),
        "composite": composite,
    }.items():
        row |= {f"{measure}_before": a, f"{measure}_after": b, f"{measure}_change": b - a}
    row |= {
        "sustainable_before": before,
        "sustainable_after": after,
        "sustainable_change": after - before,
    }
    return row


INDEX_PREVIEW = {
    "name": INDEX,
    "version": 2,
    "previous": 1,
    "kind": "index",
    "dry_run": True,
    "data_version": 7,
    "reverse_keyed_text": "Reverse-keyed items (negative loading): none.",
    "rows": [],
    "preview": {
        "measures": ["economic", "social", "psychosocial", "composite"],
        "champion_label": "rss-v1-provisional",
        "label": "rss-v2-derived",
        "unscored": {"champion": None, "candidate": None},
        "rows": [
            _row(None, None, 5000, 0.188, 0.216),
            _row("sex", "female", 2500, 0.17, 0.2),
            _row("sex", "male", 2500, 0.206, 0.232),
            _row("age_group", "child", 1000, 0.15, 0.19),
            _row("age_group", "adult", 4000, 0.1975, 0.2225),
            _row("return_type", "forced", 2000, 0.1, 0.15),
            _row("country", "SEN", 5000, 0.188, 0.216),
        ],
    },
}


class Actions:
    """The stand-in's train, jobs, preview and promote, with the caller checks of models/."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.jobs: dict[str, dict[str, Any]] = {}
        self.promoted: list[tuple[str, int, str | None, bool, str]] = []
        self.previewed: list[tuple[str, int]] = []
        self.refusal: str | None = None

    def train(self, name: str, *, caller, params) -> str:
        require(caller, Capability.MODELS, every_country=True)
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = {"id": job_id, "kind": "train-risk", "status": "queued"}
        self.jobs[job_id] |= {"progress": 0.0, "message": None, "result": None}
        return job_id

    def get_job(self, job_id: str, *, caller) -> dict[str, Any] | None:
        require(caller, Capability.MODELS, every_country=True)
        return self.jobs.get(job_id)

    def preview(self, name: str, version: int, *, caller) -> dict[str, Any]:
        require(caller, Capability.MODELS, every_country=True)
        self.previewed.append((name, version))
        if name == INDEX:
            return INDEX_PREVIEW
        found = {
            "name": name,
            "version": version,
            "previous": 1,
            "kind": "risk",
            "dry_run": True,
            "rows": [
                {"group": "overall", "n": 905, "champion": 0.78, "challenger": 0.52}
                | {"change": -0.26, "refused": True}
            ],
            "refused": self.refusal is not None,
            "preview": {
                "bands_basis": "champion",
                "bands": [
                    {"group": "overall", "by": None, "value": None, "n": 905}
                    | {"low_before": 300, "low_after": 100, "low_change": -200}
                    | {"medium_before": 300, "medium_after": 300, "medium_change": 0}
                    | {"high_before": 305, "high_after": 505, "high_change": 200}
                    | {"not_ranked_before": 0, "not_ranked_after": 0, "not_ranked_change": 0}
                ],
            },
        }
        if self.refusal:
            found["refusal"] = self.refusal
        return found

    def promote(self, name, version, *, reason, force, caller) -> dict[str, Any]:
        require(caller, Capability.MODELS, every_country=True)
        if name == INDEX and not reason:
            raise ModelError(
                "promoting an index version is a methodological decision: give --reason saying why"
            )
        if self.refusal and not force:
            raise PromotionRefused(self.refusal)
        self.promoted.append((name, version, reason, force, caller.name))
        if name == INDEX:
            return {"name": name, "version": version, "job_id": "job-rescore", "status": "queued"}
        return {"name": name, "version": version, "previous": 1, "kind": "risk"}


@pytest.fixture
def actions(own_dashboard):
    registry = registry_with_models(own_dashboard.services.engine)
    registry.versions[INDEX].insert(
        0,
        {
            "version": 2,
            "label": "rss-v2-derived",
            "aliases": ["challenger"],
            "created_at": 1_790_000_000_000,
            "metrics": {},
            "run_id": "index-2",
            "description": "derived",
        },
    )
    stand_in = Actions(registry)
    for name in ("train", "get_job", "preview", "promote"):
        setattr(registry, name, getattr(stand_in, name))
    own_dashboard.services.lifecycle = registry
    return own_dashboard, stand_in


def ask_preview(client, version, kind):
    return client.callback(
        "models-promote-preview.children",
        {"models-promote-preview-button.n_clicks": 1},
        {"models-version-control.value": version, "models-model-control.value": kind},
        changed=["models-promote-preview-button.n_clicks"],
    )


def confirm(client, pending, reason="", force=None):
    return client.callback(
        "models-promote-message.children",
        {"models-promote-confirm.n_clicks": 1},
        {
            "models-promote-pending.data": pending,
            "models-promote-reason.value": reason,
            "models-promote-force.value": force or [],
        },
    )


def test_the_page_offers_train_compare_and_promote_to_an_analyst(actions):
    dashboard, _ = actions
    client = Client(dashboard)
    client.login("analyst")
    layout = client.page("/models").get_json()
    ids = {c["props"]["id"] for c in components(layout)}
    assert {
        "models-train-button",
        "models-train-poll",
        "models-compare-button",
        "models-promote-preview-button",
        "models-promote-confirm",
        "models-promote-cancel",
    } <= ids
    poll = next(c for c in components(layout) if c["props"]["id"] == "models-train-poll")
    assert poll["props"]["disabled"] is True  # no job: no polling


def test_training_shows_the_jobs_progress_until_it_is_done(actions):
    dashboard, stand_in = actions
    client = Client(dashboard)
    client.login("analyst")
    started = outputs(
        client.callback(
            "models-train-job.data",
            {"models-train-button.n_clicks": 1},
            {"models-model-control.value": "risk"},
        )
    )
    job_id = started["models-train-job.data"]
    assert started["models-train-poll.disabled"] is False
    assert f"Training job {job_id} queued." in str(started["models-train-status.children"])

    def poll():
        return client.callback(
            "models-train-status.children",
            {"models-train-poll.n_intervals": 1},
            {"models-train-job.data": job_id, "models-model-control.value": "risk"},
        )

    stand_in.jobs[job_id] |= {"status": "running", "progress": 0.4, "message": "fitting"}
    answer = poll()
    text = response_text(answer)
    assert "Training: 40% done." in text and "fitting" in text
    assert outputs(answer)["models-train-poll.disabled"] is False
    stand_in.jobs[job_id] |= {"status": "done", "progress": 1.0, "result": {"version": 3}}
    answer = poll()
    assert "Version 3 is registered as challenger" in response_text(answer)
    assert outputs(answer)["models-train-poll.disabled"] is True


def test_a_failed_training_says_why_and_stops_polling(actions):
    dashboard, stand_in = actions
    client = Client(dashboard)
    client.login("analyst")
    job_id = stand_in.train(RISK_MODEL, caller=_analyst(dashboard), params={})
    stand_in.jobs[job_id] |= {"status": "failed", "message": "too few returnees to train"}
    answer = client.callback(
        "models-train-status.children",
        {"models-train-poll.n_intervals": 3},
        {"models-train-job.data": job_id, "models-model-control.value": "risk"},
    )
    text = response_text(answer)
    assert "Failed: nothing was registered." in text and "too few returnees to train" in text
    assert outputs(answer)["models-train-poll.disabled"] is True


def _analyst(dashboard):
    from reintegration.policy import User
    from reintegration.roles import Role

    return User(name="analyst", role=Role.ANALYST, countries=None)


def test_two_versions_are_compared_side_by_side(actions):
    dashboard, _ = actions
    client = Client(dashboard)
    client.login("analyst")
    answer = client.callback(
        "models-compare-result.children",
        {"models-compare-button.n_clicks": 1},
        {
            "models-compare-first.value": 1,
            "models-compare-second.value": 2,
            "models-model-control.value": "risk",
        },
    )
    result = outputs(answer)["models-compare-result.children"]
    found = {c["props"]["id"]: c for c in components(result)}
    rows = found["models-compare-metrics"]["props"]["data"]
    assert rows[0] == {
        "metric": "ROC AUC",
        "first": "0.780",
        "second": "0.770",
        "difference": "-0.010",
    }
    columns = [c["name"] for c in found["models-compare-metrics"]["props"]["columns"]]
    assert columns == ["Metric", "v1 · champion", "v2 · challenger", "Difference"]
    bars = found["models-compare-graph"]["props"]["figure"]["data"]
    assert [b["name"] for b in bars] == ["v1 · champion", "v2 · challenger"]
    assert list(bars[0]["y"]) == ["overall", "sex=female", "sex=male"]


def test_comparing_a_version_with_itself_is_refused(actions):
    dashboard, _ = actions
    client = Client(dashboard)
    client.login("analyst")
    answer = client.callback(
        "models-compare-result.children",
        {"models-compare-button.n_clicks": 1},
        {
            "models-compare-first.value": 1,
            "models-compare-second.value": 1,
            "models-model-control.value": "risk",
        },
    )
    assert "Choose two different versions." in response_text(answer)


def test_an_index_promotion_is_previewed_overall_and_by_group_then_confirmed(actions):
    dashboard, stand_in = actions
    client = Client(dashboard)
    client.login("analyst")
    answer = outputs(ask_preview(client, 2, "index"))
    assert answer["models-promote-panel.style"] == {}
    assert answer["models-promote-pending.data"] == {"name": INDEX, "version": 2, "kind": "index"}
    assert stand_in.promoted == []  # a preview changes nothing
    shown = answer["models-promote-preview.children"]
    text = str(shown)
    assert (
        "Promoting rss-v2-derived in place of rss-v1-provisional would move the share "
        "sustainable from 18.8% to 21.6% (+2.8%) and the mean composite from 0.512 to 0.534"
    ) in text
    rows = next(c for c in components(shown) if c["props"]["id"] == "models-promote-table")
    data = rows["props"]["data"]
    assert data[0]["group"] == "Overall" and data[0]["sustainable"] == "18.8% → 21.6% (+2.8%)"
    groups = [r["group"] for r in data]
    assert any(g.startswith("Sex: ") for g in groups)
    assert any(g.startswith("Child or adult: Child") for g in groups)
    assert any(g.startswith("Return type: ") for g in groups)
    assert any(g.startswith("Country: ") for g in groups)
    assert data[0]["economic"] == "0.500 → 0.520 (+0.020)"
    done = outputs(confirm(client, answer["models-promote-pending.data"], "field data"))
    assert stand_in.promoted == [(INDEX, 2, "field data", False, "analyst")]
    assert "Promotion of rss-index version 2 started (job job-rescore)" in str(
        done["models-promote-message.children"]
    )
    assert done["models-promote-panel.style"] == {"display": "none"}
    assert done["models-promote-pending.data"] is None


def test_confirming_an_index_without_a_reason_says_so_and_keeps_the_preview(actions):
    dashboard, stand_in = actions
    client = Client(dashboard)
    client.login("analyst")
    pending = {"name": INDEX, "version": 2, "kind": "index"}
    done = outputs(confirm(client, pending, "  "))
    assert "give --reason saying why" in str(done["models-promote-message.children"])
    assert done["models-promote-panel.style"] == {}
    assert done["models-promote-pending.data"] == pending
    assert stand_in.promoted == []


def test_cancel_closes_the_preview_and_changes_nothing(actions):
    dashboard, stand_in = actions
    client = Client(dashboard)
    client.login("analyst")
    answer = outputs(
        client.callback(
            "models-promote-preview.children",
            {"models-promote-cancel.n_clicks": 1, "models-promote-preview-button.n_clicks": 1},
            {"models-version-control.value": 2, "models-model-control.value": "index"},
            changed=["models-promote-cancel.n_clicks"],
        )
    )
    assert answer["models-promote-panel.style"] == {"display": "none"}
    assert answer["models-promote-pending.data"] is None
    assert "Promotion cancelled: nothing changed." in str(answer["models-promote-message.children"])
    assert stand_in.promoted == []


def test_a_risk_preview_shows_the_bands_and_the_gates_refusal(actions):
    dashboard, stand_in = actions
    stand_in.refusal = "reintegration-risk version 2 is refused: its ROC AUC is lower"
    client = Client(dashboard)
    client.login("analyst")
    answer = outputs(ask_preview(client, 2, "risk"))
    shown = answer["models-promote-preview.children"]
    found = {c["props"]["id"]: c for c in components(shown)}
    bands = found["models-promote-table"]["props"]["data"][0]
    assert bands["high"] == "305 → 505 (+200)" and bands["low"] == "300 → 100 (-200)"
    assert "The gate would refuse this version: " in str(shown)
    refused = outputs(confirm(client, answer["models-promote-pending.data"]))
    assert "is refused" in str(refused["models-promote-message.children"])
    forced = outputs(confirm(client, answer["models-promote-pending.data"], "why", ["force"]))
    assert "reintegration-risk version 2 is now the champion." in str(
        forced["models-promote-message.children"]
    )
    assert stand_in.promoted == [(RISK_MODEL, 2, "why", True, "analyst")]


@pytest.mark.parametrize("who", ["manager", "enumerator"])
def test_a_manager_or_enumerator_can_neither_preview_nor_promote_nor_train(actions, who):
    dashboard, stand_in = actions
    client = Client(dashboard)
    client.login(who)
    assert ask_preview(client, 2, "index").status_code == 204
    pending = {"name": INDEX, "version": 2, "kind": "index"}
    assert confirm(client, pending, "x").status_code == 204
    trained = client.callback(
        "models-train-job.data",
        {"models-train-button.n_clicks": 1},
        {"models-model-control.value": "risk"},
    )
    assert trained.status_code == 204
    assert stand_in.promoted == [] and stand_in.jobs == {} and stand_in.previewed == []


def test_the_versions_table_follows_a_promotion_once_its_job_is_done(actions):
    dashboard, stand_in = actions
    registry = stand_in.registry
    jobs: list[dict[str, Any]] = []
    registry.list_jobs = lambda *, caller: jobs
    client = Client(dashboard)
    client.login("analyst")

    def look(seen):
        return client.callback(
            "models-promote-applied.data",
            {"models-promotions-poll.n_intervals": 1},
            {"models-promote-applied.data": seen, "models-model-control.value": "index"},
        )

    first = outputs(look(None))
    assert first["models-promote-applied.data"] == []
    assert "models-versions-table.data" not in first  # nothing ended: the table stays
    jobs.append({"id": "job-9", "kind": "rescore", "status": "done"})
    registry.versions[INDEX][0]["aliases"] = ["champion"]
    registry.versions[INDEX][1]["aliases"] = []
    later = outputs(look([]))
    assert later["models-promote-applied.data"] == ["job-9"]
    rows = later["models-versions-table.data"]
    assert [(r["version"], r["aliases"]) for r in rows] == [(2, "champion"), (1, "")]
