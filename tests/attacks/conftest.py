"""The attack tests' panel: about 3,000 synthetic returnees ingested once per session into a
SQLite store, with some countries given one to four returnees so that small cells (and the
all-but-one attack) have targets; the app on it, and adversaries with a manager's token and
with an analyst's asking for protected figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.api.conftest import Stack, build_stack, ingest_panel
from tests.attacks._attack import Adversary, read_truth

RETURNEES = 3000
ROUNDS = 3
SEED = 12
# Countries of one returnee each (the all-but-one and histogram attacks' targets), then a few
# of two to four (small cells of every grouping with country).
SINGLE = (
    "MRT BFA NER TGO BEN GHA CMR TCD SLE LBR GNB CPV MAR DZA TUN LBY EGY SDN ETH ERI SOM KEN "
    "UGA COD COG GAB"
).split()
FEW = {"AGO": 2, "ZMB": 3, "NAM": 4, "MOZ": 2}


def panel_frame() -> pd.DataFrame:
    """The synthetic panel, some returnees moved to the small countries."""
    from reintegration.synth import generate_panel

    frame, _ = generate_panel(RETURNEES, ROUNDS, seed=SEED)
    people = sorted(frame["returnee_id"].unique())
    moved = [*SINGLE, *(code for code, n in FEW.items() for _ in range(n))]
    step = len(people) // len(moved)
    country = dict(zip(people[::step], moved, strict=False))
    new = frame["returnee_id"].map(country)
    return frame.assign(country=new.where(new.notna(), frame["country"]).astype(object))


@dataclass
class Panel:
    """The app on the attack panel, the ground truth read back from its store."""

    stack: Stack
    truth: pd.DataFrame
    index_version: str
    countries: list[str]


@pytest.fixture(scope="session")
def attack_panel(tmp_path_factory: pytest.TempPathFactory, questionnaire: Any) -> Iterator[Panel]:
    from reintegration.synth import write_panel

    folder = tmp_path_factory.mktemp("attack-panel")
    write_panel(panel_frame(), folder / "panel.csv", "csv")
    stack = build_stack(folder / "home", questionnaire)
    report = ingest_panel(stack, folder / "panel.csv")
    assert report.status == "done" and report.rejected == 0, report
    with stack.client:
        label = stack.get("/api/v1/index-versions", "admin").json()["champion"]
        truth = read_truth(stack.services.engine, label, questionnaire.child_age_below)
        yield Panel(stack, truth, label, sorted(truth["country"].unique()))
    stack.services.close()


CALLERS = {
    "manager": ("manager", {}),
    "analyst-protected": ("analyst", {"protected": "true"}),
}


@pytest.fixture(scope="session", params=list(CALLERS))
def adversary(request: pytest.FixtureRequest, attack_panel: Panel) -> Adversary:
    """A manager (always protected figures), then an analyst asking for protected ones."""
    who, always = CALLERS[request.param]
    return Adversary(attack_panel.stack, who, always)


@pytest.fixture(scope="session")
def restarted(attack_panel: Panel, questionnaire: Any) -> Iterator[Stack]:
    """A second app on the same store, as after a restart: new services, caches and app.

    The users are in the store already, so the second build reuses the first one's tokens.
    """
    import tests.api.conftest as api_fixtures

    stack = attack_panel.stack
    settings = stack.services.settings
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_fixtures, "add_user", lambda _engine, who, *_a, **_k: stack.tokens[who])
        second = build_stack(Path(settings.home), questionnaire, database_url=settings.database_url)
    with second.client:
        yield second
    second.services.close()
