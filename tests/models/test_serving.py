"""Champions: loaded once per version, noticed when the alias moves, nothing created to look."""

from __future__ import annotations

from models import _mlflow, registry
from models.serving import Champions
from reintegration.settings import Settings


def test_without_a_registry_the_index_is_the_built_in_v1_and_nothing_is_created(tmp_path):
    settings = Settings(home=tmp_path / "var", database_url="", mlflow_tracking_uri="")
    champions = Champions(settings)
    index, label, version = champions.index()
    assert (label, version) == ("rss-v1-provisional", None)
    assert index.label_ == label
    assert champions.risk() is None
    assert champions.reference() is None
    assert list(tmp_path.iterdir()) == []


def test_the_champions_are_loaded_from_the_registry(registry_home, trained):
    settings, _ = registry_home
    champions = Champions(settings)
    index, label, version = champions.index()
    assert (label, version) == ("rss-v1-provisional", 1)
    model, risk_version = champions.risk()
    assert risk_version == trained.risk["version"]
    assert champions.risk()[0] is model  # loaded once


def test_a_moved_alias_is_noticed_after_the_check_interval(registry_home, trained):
    settings, _ = registry_home
    champions = Champions(settings, check_every=3600)
    first = champions.index()[0]
    client = _mlflow.client(settings)
    client.set_registered_model_alias("rss-index", "champion", str(trained.index["version"]))
    assert champions.index()[0] is first  # not looked at again within the interval
    champions.refresh()
    index, label, version = champions.index()
    assert (label, version) == (
        f"rss-v{trained.index['version']}-derived",
        trained.index["version"],
    )
    assert champions.reference() is not None  # a derived version carries its training data


def test_looking_every_time_sees_a_promotion_at_once(registry_home, trained):
    settings, _ = registry_home
    champions = Champions(settings, check_every=0)
    assert champions.index()[2] == 1
    _mlflow.client(settings).set_registered_model_alias(
        registry.INDEX_MODEL, registry.CHAMPION, str(trained.index["version"])
    )
    assert champions.index()[2] == trained.index["version"]
