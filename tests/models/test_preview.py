"""The preview of a promotion (a dry run): what it would change, and that it changes nothing."""

from __future__ import annotations

import pytest

from models import _mlflow, registry
from models.preview import preview_promotion
from models.promotion import promote
from reintegration.errors import Forbidden, ModelError
from reintegration.policy import User, cli_caller
from reintegration.roles import Role
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from tests.models.conftest import count

OFFICER = User(name="officer", role=Role.ANALYST, countries=None)


def champion(settings, name):
    found = registry.version_by_alias(_mlflow.client(settings), name, registry.CHAMPION)
    return int(found.version) if found else None


def state(engine, settings):
    with for_reading(engine).connect() as conn:
        version = read_data_version(conn)
    return (
        version,
        champion(settings, "rss-index"),
        champion(settings, "reintegration-risk"),
        count(engine, "SELECT count(*) FROM audit"),
        count(engine, "SELECT count(*) FROM score"),
        count(engine, "SELECT count(*) FROM job"),
    )


def test_an_index_preview_changes_nothing_and_the_promotion_applies_what_it_showed(
    registry_home, trained
):
    settings, engine = registry_home
    version = trained.index["version"]
    before = state(engine, settings)
    seen = preview_promotion(engine, "index", version, caller=OFFICER, settings=settings)
    assert state(engine, settings) == before
    assert seen["dry_run"] is True and seen["kind"] == "index" and seen["previous"] == 1
    preview = seen["preview"]
    assert preview["measures"] == ["economic", "social", "psychosocial", "composite"]
    assert preview["champion_label"] == "rss-v1-provisional"
    assert preview["label"] == f"rss-v{version}-derived"
    overall = preview["rows"][0]
    assert overall["group"] == "overall" and overall["n"] > 0
    for measure in (*preview["measures"], "sustainable"):
        assert overall[f"{measure}_before"] is not None
        assert overall[f"{measure}_change"] == pytest.approx(
            overall[f"{measure}_after"] - overall[f"{measure}_before"], abs=1e-9
        )
    breakdowns = {r["by"] for r in preview["rows"][1:]}
    assert breakdowns == {"sex", "age_group", "return_type", "country"}
    assert {r["value"] for r in preview["rows"] if r["by"] == "age_group"} <= {
        "child",
        "adult",
        "not recorded",
    }
    assert seen["rows"][0]["group"] == "overall"  # the promotion's own report comes along
    done = promote(
        engine,
        "index",
        version,
        reason="weights from our own field data",
        force=False,
        caller=OFFICER,
        settings=settings,
    )
    assert done["preview"] == preview
    assert champion(settings, "rss-index") == version


def test_a_risk_preview_says_the_gate_would_refuse_and_shows_the_bands(registry_home, trained):
    settings, engine = registry_home
    before = state(engine, settings)
    seen = preview_promotion(
        engine, "risk", trained.degraded_version, caller=OFFICER, settings=settings
    )
    assert state(engine, settings) == before
    assert seen["kind"] == "risk" and seen["refused"] is True
    assert seen["refusal"].startswith(
        f"reintegration-risk version {trained.degraded_version} is refused: "
    )
    assert seen["preview"]["bands_basis"] == "champion"
    bands = seen["preview"]["bands"]
    overall = bands[0]
    assert overall["group"] == "overall"
    for band in ("low", "medium", "high"):
        assert overall[f"{band}_change"] == overall[f"{band}_after"] - overall[f"{band}_before"]
    assert {r["by"] for r in bands[1:]} == {"sex", "age_group", "return_type", "country"}


def test_a_forced_risk_promotion_returns_the_bands_it_previewed(registry_home, trained):
    settings, engine = registry_home
    seen = preview_promotion(
        engine, "risk", trained.degraded_version, caller=OFFICER, settings=settings
    )
    done = promote(
        engine,
        "risk",
        trained.degraded_version,
        reason="testing the preview",
        force=True,
        caller=OFFICER,
        settings=settings,
    )
    assert done["preview"] == seen["preview"]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ENUMERATOR])
def test_only_those_who_may_promote_may_preview(registry_home, trained, role):
    settings, engine = registry_home
    with pytest.raises(Forbidden):
        preview_promotion(
            engine,
            "index",
            trained.index["version"],
            caller=User(name="someone", role=role, countries=None),
            settings=settings,
        )


def test_a_scoped_analyst_may_not_preview(registry_home, trained):
    settings, engine = registry_home
    scoped = User(name="officer", role=Role.ANALYST, countries=frozenset({"SEN"}))
    with pytest.raises(Forbidden):
        preview_promotion(
            engine, "index", trained.index["version"], caller=scoped, settings=settings
        )


def test_the_champion_has_nothing_to_preview(registry_home, trained):
    settings, engine = registry_home
    with pytest.raises(ModelError, match="rss-index version 1 is already the champion"):
        preview_promotion(engine, "index", 1, caller=cli_caller("a"), settings=settings)
