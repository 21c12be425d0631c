"""Model routes over a stand-in registry: listing, cards, training jobs, promotion and its gate."""

from __future__ import annotations

MODELS = "/api/v1/models"


def test_models_and_their_versions_are_listed(panel):
    models = panel.get(MODELS, "analyst").json()
    versions = panel.get(f"{MODELS}/index/versions", "analyst").json()

    assert [m["name"] for m in models] == ["rss-index", "reintegration-risk"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[-1]["label"] == "rss-v1-provisional"
    assert versions[-1]["aliases"] == ["champion"]
    assert versions[0]["created_at"].startswith("2026-")  # the registry's milliseconds, as a date


def test_an_unknown_model_is_404_with_the_registrys_sentence(panel):
    response = panel.get(f"{MODELS}/forest/versions", "analyst")

    assert response.status_code == 404
    assert response.json()["detail"] == "there is no model named 'forest': use index or risk."


def test_an_unknown_version_is_404(panel):
    card = panel.get(f"{MODELS}/rss-index/versions/9/card", "analyst")
    promote = panel.post(f"{MODELS}/risk/versions/9/promote", "analyst", json={"reason": "x"})

    assert card.status_code == promote.status_code == 404
    assert card.json()["detail"] == "rss-index has no version 9."


def test_promoting_the_champion_is_409(panel):
    response = panel.post(f"{MODELS}/index/versions/1/promote", "analyst", json={"reason": "x"})

    assert response.status_code == 409
    assert response.json()["detail"] == "rss-index version 1 is already the champion."


def test_a_model_card_is_markdown(panel):
    response = panel.get(f"{MODELS}/rss-index/versions/1/card", "analyst")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith("# rss-index version 1")


def test_training_answers_202_with_a_job_to_follow(panel):
    response = panel.post(f"{MODELS}/risk/train", "analyst", json={"params": {"seed": 3}})

    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.headers["location"] == f"/api/v1/jobs/{job_id}"
    job = panel.get(f"/api/v1/jobs/{job_id}", "analyst").json()
    assert job["kind"] == "train-risk" and job["status"] == "queued" and job["actor"] == "analyst"
    assert job_id in {j["id"] for j in panel.get("/api/v1/jobs", "admin").json()}


def test_training_needs_no_body(panel):
    assert panel.post(f"{MODELS}/index/train", "admin").status_code == 202


def test_an_unknown_job_is_404(panel):
    response = panel.get("/api/v1/jobs/no-such-job", "analyst")

    assert response.status_code == 404
    assert response.json()["detail"] == "there is no job no-such-job."


def test_a_promotion_refreshes_the_champions(panel):
    before = panel.services.champions.refreshed

    response = panel.post(
        f"{MODELS}/rss-index/versions/2/promote", "admin", json={"reason": "  new weights "}
    )

    assert response.status_code == 200 and response.json()["promoted"] is True
    assert panel.services.lifecycle.promoted[-1] == ("rss-index", 2, "new weights", False, "admin")
    assert panel.services.champions.refreshed == before + 1


def test_a_refused_promotion_is_409_naming_metric_and_group(panel):
    refusal = "ROC AUC in group sex=female falls from 0.81 to 0.74, more than the tolerance 0.02"
    panel.services.lifecycle.refuse = refusal
    try:
        refused = panel.post(f"{MODELS}/risk/versions/3/promote", "analyst", json={})
        forced = panel.post(f"{MODELS}/risk/versions/3/promote", "analyst", json={"force": True})
    finally:
        panel.services.lifecycle.refuse = None

    assert refused.status_code == 409
    assert refused.json()["detail"] == refusal + "."
    assert forced.status_code == 200


def test_a_promotion_needs_a_json_body(panel):
    response = panel.post(f"{MODELS}/risk/versions/3/promote", "analyst")

    assert response.status_code == 422
    assert response.json()["detail"] == "the body: is required."


def test_a_version_number_out_of_range_is_422(panel):
    response = panel.post(f"{MODELS}/risk/versions/0/promote", "analyst", json={})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("path parameter version: ")
