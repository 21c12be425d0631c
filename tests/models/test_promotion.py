"""Promotion: the gate of the risk model, the reason of an index, rescoring, the audit."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from models import _mlflow, registry
from models.promotion import promote
from reintegration.errors import ModelError, PromotionRefused
from reintegration.policy import CLI, cli_caller
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from tests.models.conftest import count


def champion(settings, name):
    found = registry.version_by_alias(_mlflow.client(settings), name, registry.CHAMPION)
    return int(found.version) if found else None


def audits(engine, action):
    with for_reading(engine).connect() as conn:
        rows = conn.execute(
            sa.text("SELECT actor, target, detail FROM audit WHERE action = :a ORDER BY id"),
            {"a": action},
        ).all()
    return [
        (r.actor, r.target, json.loads(r.detail) if isinstance(r.detail, str) else r.detail)
        for r in rows
    ]


def test_a_model_trained_on_shuffled_outcomes_is_refused_naming_the_metric(registry_home, trained):
    """Acceptance: the gate refuses a deliberately degraded model, on both counts."""
    settings, engine = registry_home
    with pytest.raises(PromotionRefused) as refused:
        promote(
            engine,
            "risk",
            trained.degraded_version,
            reason=None,
            force=False,
            caller=cli_caller("officer"),
            settings=settings,
        )
    message = str(refused.value)
    assert message.startswith(
        f"reintegration-risk version {trained.degraded_version} is refused: it does not beat the "
        "baseline rule (1 - first-survey composite): ROC AUC 0."
    )
    assert "paired bootstrap 95% interval of the difference -0." in message
    assert (
        f"; and its ROC AUC is lower than the champion's (version {trained.risk['version']}) by "
        "more than the tolerance of 0.02, the whole 95% paired bootstrap interval of the drop "
        "above it, in overall: 0."
    ) in message
    assert "sex=" in message
    assert message.endswith("To promote it anyway, use --force with --reason saying why")
    assert champion(settings, "reintegration-risk") == trained.risk["version"]
    [(actor, target, detail)] = audits(engine, "promote_refused")
    assert (actor, target) == ("officer", f"reintegration-risk@{trained.degraded_version}")
    overall = next(r for r in detail["rows"] if r["group"] == "overall")
    assert overall["refused"] and overall["drop_low"] > 0.02
    assert (
        overall["drop_low"] <= overall["champion"] - overall["challenger"] <= overall["drop_high"]
    )


def test_a_version_that_does_not_beat_the_baseline_is_refused_without_a_champion(
    registry_home, trained
):
    """Nothing is promoted unless it beats the baseline rule, first champion included."""
    if trained.risk["beats_baseline"]:
        pytest.skip("this session's model beats the baseline rule")
    settings, engine = registry_home
    client = _mlflow.client(settings)
    client.delete_registered_model_alias("reintegration-risk", registry.CHAMPION)
    versus = trained.risk["versus_baseline"]
    with pytest.raises(PromotionRefused) as refused:
        promote(
            engine,
            "risk",
            trained.risk["version"],
            reason=None,
            force=False,
            caller=cli_caller("officer"),
            settings=settings,
        )
    assert str(refused.value) == (
        f"reintegration-risk version {trained.risk['version']} is refused: it does not beat the "
        f"baseline rule (1 - first-survey composite): ROC AUC {versus['model_auc']:.3f} against "
        f"{versus['baseline_auc']:.3f}, paired bootstrap 95% interval of the difference "
        f"{versus['low']:+.3f} to {versus['high']:+.3f}, not above 0. To promote it anyway, use "
        "--force with --reason saying why"
    )
    assert champion(settings, "reintegration-risk") is None


def test_force_needs_a_reason(registry_home, trained):
    settings, engine = registry_home
    with pytest.raises(ModelError, match="--force needs --reason: say why the gate is overridden"):
        promote(
            engine,
            "risk",
            trained.degraded_version,
            reason="  ",
            force=True,
            caller=cli_caller("officer"),
            settings=settings,
        )


def test_force_with_a_reason_overrides_the_gate_and_is_audited(registry_home, trained):
    settings, engine = registry_home
    done = promote(
        engine,
        "risk",
        trained.degraded_version,
        reason="testing the worklist",
        force=True,
        caller=cli_caller("officer"),
        settings=settings,
    )
    assert done["forced"] and done["refusals"]
    assert champion(settings, "reintegration-risk") == trained.degraded_version
    actor, target, detail = audits(engine, "promote")[-1]
    assert (actor, target) == ("officer", f"reintegration-risk@{trained.degraded_version}")
    assert detail["reason"] == "testing the worklist" and detail["forced"] is True
    assert (
        done["risks"]
        == count(
            engine, "SELECT count(*) FROM risk WHERE model_version = :v", v=trained.degraded_version
        )
        > 0
    )


def test_an_index_version_needs_a_reason(registry_home, trained):
    settings, engine = registry_home
    with pytest.raises(
        ModelError,
        match="promoting an index version is a methodological decision: give --reason saying why",
    ):
        promote(
            engine,
            "index",
            trained.index["version"],
            reason=None,
            force=False,
            caller=cli_caller("officer"),
            settings=settings,
        )
    assert champion(settings, "rss-index") == 1


def test_promoting_an_index_rescores_keeps_old_scores_and_shows_the_shift(registry_home, trained):
    settings, engine = registry_home
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    current = count(engine, "SELECT count(*) FROM submission WHERE current")
    old = count(engine, "SELECT count(*) FROM score WHERE index_version = 'rss-v1-provisional'")
    with for_reading(engine).connect() as conn:
        before = read_data_version(conn)
    seen = []
    done = promote(
        engine,
        "index",
        version,
        reason="weights from our own field data",
        force=False,
        caller=cli_caller("officer"),
        settings=settings,
        progress=lambda n, total: seen.append((n, total)),
    )
    assert done["rescored"] == current == seen[-1][0]
    assert count(engine, "SELECT count(*) FROM score WHERE index_version = :l", l=label) == current
    assert (
        count(engine, "SELECT count(*) FROM score WHERE index_version = 'rss-v1-provisional'")
        == old
    )
    assert (
        count(
            engine,
            "SELECT count(DISTINCT model_version) FROM score WHERE index_version = :l",
            l=label,
        )
        == 1
    )
    with for_reading(engine).connect() as conn:
        assert read_data_version(conn) >= before + 2  # the rescoring, then the promotion
    overall = done["rows"][0]
    assert overall["group"] == "overall" and 0 < overall["n"] <= trained.index["n"]
    assert overall["composite_change"] == pytest.approx(
        overall["composite_challenger"] - overall["composite_champion"]
    )
    assert overall["sustainable_change"] is not None
    assert any(r["group"].startswith("sex=") for r in done["rows"])
    assert champion(settings, "rss-index") == version
    aliases = {
        v["version"]: v["aliases"] for v in registry.list_versions("index", settings, caller=CLI)
    }
    assert aliases[version] == ["champion"] and aliases[1] == []
    _, target, detail = audits(engine, "promote")[-1]
    assert (
        target == f"rss-index@{version}" and detail["reason"] == "weights from our own field data"
    )
    assert detail["rescored"] == current


def test_promoting_back_rescores_only_what_is_new(registry_home, trained):
    settings, engine = registry_home
    version = trained.index["version"]
    promote(
        engine,
        "index",
        version,
        reason="derived",
        force=False,
        caller=cli_caller("a"),
        settings=settings,
    )
    done = promote(
        engine,
        "index",
        1,
        reason="back to v1",
        force=False,
        caller=cli_caller("a"),
        settings=settings,
    )
    assert done["rescored"] == 0
    assert champion(settings, "rss-index") == 1


def test_the_champion_cannot_be_promoted_again(registry_home, trained):
    settings, engine = registry_home
    with pytest.raises(
        ModelError,
        match=f"reintegration-risk version {trained.risk['version']} is already the champion",
    ):
        promote(
            engine,
            "risk",
            trained.risk["version"],
            reason=None,
            force=False,
            caller=cli_caller("a"),
            settings=settings,
        )


def test_an_unknown_version_is_named(registry_home):
    settings, engine = registry_home
    with pytest.raises(ModelError, match="rss-index has no version 42"):
        promote(
            engine, "index", 42, reason="x", force=False, caller=cli_caller("a"), settings=settings
        )
