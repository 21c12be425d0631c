"""The model routes over the real registry serve a version registered before the disclosure rule
without its small group: the card, the versions' metrics and descriptions (models.registry
passes every read through models.disclosure_models)."""

from __future__ import annotations

import pytest

from api.services import RegistryLifecycle
from tests.api.conftest import build_stack
from tests.models.test_model_disclosure import RULE, register_old_risk_version

MODELS = "/api/v1/models"


@pytest.fixture
def registry_stack(tmp_path, questionnaire):
    stack = build_stack(tmp_path, questionnaire)
    stack.services.lifecycle = RegistryLifecycle(stack.services.engine, stack.services.settings)
    version = register_old_risk_version(stack.services.settings)
    with stack.client:
        yield stack, version
    stack.services.close()


def test_an_old_cards_small_group_is_not_served(registry_stack):
    stack, version = registry_stack
    response = stack.get(f"{MODELS}/risk/versions/{version}/card", "analyst")

    assert response.status_code == 200
    card = response.text
    assert "age_group=child" not in card and "| fewer than 5 |" not in card
    assert "| age_group=adult | 250 |" in card  # 249 before, beside a held-out total of 251
    assert "| held-out returnees (grouped by returnee) | 250 |" in card
    assert "251" not in card and "249" not in card
    assert RULE in card


def test_an_old_versions_metrics_and_description_are_served_rounded(registry_stack):
    stack, version = registry_stack
    versions = stack.get(f"{MODELS}/risk/versions", "analyst").json()

    [found] = [v for v in versions if v["version"] == version]
    assert found["metrics"] == {"n_test": 250.0, "roc_auc": 0.812}
    assert found["description"] == "held out 250 returnees"


def test_a_manager_gets_no_card_at_all(registry_stack):
    stack, version = registry_stack
    response = stack.get(f"{MODELS}/risk/versions/{version}/card", "manager")

    assert response.status_code == 403
