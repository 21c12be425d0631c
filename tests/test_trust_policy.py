"""One policy, enforced where the data is: the domain functions that read or change users, the
audit trail, models, jobs and row-level data refuse a caller the role matrix does not allow,
whoever calls them (API, dashboard, command line), and leave the store as it was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from reintegration import batch_views, casework
from reintegration.errors import Forbidden, UserError
from reintegration.policy import CLI, User, cli_caller, may, require
from reintegration.roles import GRANTS, Capability, Role
from reintegration.store.schema import app_user, audit
from reintegration.users import add_user, authenticate, list_users, revoke_user

SEN_ADMIN = User("admin.sen", Role.ADMIN, frozenset({"SEN"}))
SEN_ANALYST = User("analyst.sen", Role.ANALYST, frozenset({"SEN"}))
MANAGER = User("manager", Role.MANAGER, None)
EVERY_COUNTRY_REFUSAL = (
    "this token is limited to SEN, and this request concerns every country: it needs a token "
    "that is not limited to some countries"
)


def stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        users = conn.execute(sa.select(sa.func.count()).select_from(app_user)).scalar_one()
        entries = conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()
    return users, entries


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("countries", [None, frozenset({"SEN"})])
@pytest.mark.parametrize("capability", list(Capability))
@pytest.mark.parametrize("every_country", [False, True])
def test_require_follows_the_role_matrix_and_the_every_country_rule(
    role, countries, capability, every_country
) -> None:
    caller = User("someone", role, countries)
    allowed = role in GRANTS[capability] and not (every_country and countries is not None)

    assert may(caller, capability, every_country=every_country) is allowed
    if allowed:
        require(caller, capability, every_country=every_country)
    else:
        with pytest.raises(Forbidden):
            require(caller, capability, every_country=every_country)


def test_the_refusals_are_sentences_users_can_act_on() -> None:
    with pytest.raises(Forbidden) as role:
        require(MANAGER, Capability.ADMIN, every_country=True)
    with pytest.raises(Forbidden) as scope:
        require(SEN_ADMIN, Capability.ADMIN, every_country=True)

    assert str(role.value) == "the manager role may not manage users or read the audit trail"
    assert str(scope.value) == EVERY_COUNTRY_REFUSAL


def test_the_command_line_is_an_admin_for_every_country() -> None:
    assert CLI.role is Role.ADMIN and CLI.countries is None
    assert cli_caller("ops") == User("ops", Role.ADMIN, None)
    for capability in Capability:
        require(cli_caller("ops"), capability, every_country=True)


def test_a_scoped_admin_cannot_add_an_admin_for_every_country(engine) -> None:
    """Finding 1, in the domain: every path (API, dashboard, CLI) reaches this function."""
    before = stored(engine)

    with pytest.raises(Forbidden, match=EVERY_COUNTRY_REFUSAL):
        add_user(engine, "escalated", "admin", None, caller=SEN_ADMIN)

    assert stored(engine) == before


def test_a_scoped_admin_cannot_revoke_list_users_or_read_the_audit(engine) -> None:
    add_user(engine, "victim", "manager", ["GIN"], caller=CLI)
    before = stored(engine)

    with pytest.raises(Forbidden):
        revoke_user(engine, "victim", caller=SEN_ADMIN)
    with pytest.raises(Forbidden):
        list_users(engine, caller=SEN_ADMIN)
    with pytest.raises(Forbidden):
        batch_views.audit_entries(engine, caller=SEN_ADMIN)
    with pytest.raises(Forbidden, match="the analyst role may not manage users"):
        batch_views.audit_entries(engine, caller=User("a", Role.ANALYST, None))

    assert stored(engine) == before
    assert [u.name for u in list_users(engine, caller=CLI)] == ["victim"]


def test_an_empty_list_of_countries_is_refused_not_read_as_every_country(engine) -> None:
    """Finding 13: ``countries: []`` made an unlimited user."""
    before = stored(engine)

    with pytest.raises(UserError) as caught:
        add_user(engine, "wide", "admin", [], caller=CLI)

    assert str(caught.value) == (
        "the list of countries is empty: give at least one country code, or none at all for "
        "every country"
    )
    assert stored(engine) == before


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden", "x" * 65, "tab\there", "é"])
def test_unsafe_user_names_are_refused_with_the_rule(engine, name) -> None:
    before = stored(engine)

    with pytest.raises(UserError) as caught:
        add_user(engine, name, "manager", caller=CLI)

    assert (
        "cannot be a user name: a user name has 1 to 64 characters: letters, digits, dot, "
        "underscore, @ or hyphen, starting with a letter or digit" in str(caught.value)
    )
    assert stored(engine) == before


def store_a_name_from_before_the_rule(engine: sa.Engine) -> None:
    """A user named ``../../x``, as a store written before names had a rule may hold."""
    with engine.begin() as conn:
        conn.execute(
            app_user.insert().values(
                name="../../x",
                role="manager",
                countries=None,
                token_sha256="0" * 64,
                created_at=datetime.now(UTC),
            )
        )


def test_a_name_stored_before_the_rule_stays_revocable(engine) -> None:
    store_a_name_from_before_the_rule(engine)

    revoke_user(engine, "../../x", caller=CLI)

    assert list_users(engine, caller=CLI) == []


def test_models_refuse_scoped_and_non_model_roles_before_reading_anything(tmp_path) -> None:
    """Finding 2, in models/: versions, cards, runs (subgroup metrics with n), drift,
    promotion and jobs all need MODELS for every country."""
    from models import jobs, promotion, registry
    from reintegration.settings import Settings

    settings = Settings(home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'no.db'}")
    engine = sa.create_engine("sqlite://")
    calls = [
        lambda c: registry.list_models(settings, caller=c),
        lambda c: registry.list_versions("risk", settings, caller=c),
        lambda c: registry.model_card("risk", 1, settings, caller=c),
        lambda c: registry.run_details("run", settings, caller=c),
        lambda c: registry.drift(engine, 1, caller=c),
        lambda c: promotion.promote(
            engine, "risk", 2, reason="x", force=False, caller=c, settings=settings
        ),
        lambda c: jobs.submit_job(engine, "train-risk", caller=c, params={}),
        lambda c: jobs.get_job(engine, "job", caller=c),
        lambda c: jobs.list_jobs(engine, caller=c),
    ]
    for call in calls:
        with pytest.raises(Forbidden, match=EVERY_COUNTRY_REFUSAL):
            call(SEN_ANALYST)
        with pytest.raises(Forbidden, match="the manager role may not train or promote models"):
            call(MANAGER)
    assert not (tmp_path / "no.db").exists()  # refused before the registry was opened


def test_the_worklist_keeps_to_the_callers_countries_and_needs_row_level(engine) -> None:
    with pytest.raises(Forbidden, match="the manager role may not see row-level data"):
        casework.worklist(engine, caller=MANAGER, model="risk", model_version=1)
    with pytest.raises(Forbidden):
        casework.returnee_detail(engine, "0" * 64, MANAGER)
    _, before = stored(engine)

    rows = casework.worklist(
        engine, caller=SEN_ANALYST, model="risk", model_version=1, countries={"GIN"}
    )

    assert rows.items == [] and rows.total == 0
    with engine.connect() as conn:
        entries = conn.execute(sa.select(audit).where(audit.c.id > before)).all()
    assert [(e.actor, e.action, e.detail) for e in entries] == [
        ("analyst.sen", "worklist_read", {"rows": 0, "offset": 0, "total": 0})
    ]


def test_the_cli_adds_a_user_for_every_country_without_country_and_refuses_bad_names(home):
    from reintegration.cli import app
    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store

    added = CliRunner().invoke(app, ["users", "add", "ops", "--role", "admin"])
    bad = CliRunner().invoke(app, ["users", "add", "../../x", "--role", "admin"])

    assert added.exit_code == 0, added.output
    engine = open_store(get_settings().database_url)
    user = authenticate(engine, added.stdout.strip())
    assert user is not None and user.countries is None
    assert bad.exit_code == 2
    assert bad.stderr.strip().startswith("error: '../../x' cannot be a user name: a user name")
    assert [u.name for u in list_users(engine, caller=CLI)] == ["ops"]
    engine.dispose()


def test_the_cli_revokes_a_name_stored_before_the_rule(home):
    from reintegration.cli import app
    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store

    engine = open_store(get_settings().database_url)
    store_a_name_from_before_the_rule(engine)

    revoked = CliRunner().invoke(app, ["users", "revoke", "../../x", "--actor", "ops"])

    assert revoked.exit_code == 0, revoked.output
    assert list_users(engine, caller=CLI) == []
    with engine.connect() as conn:
        entry = conn.execute(sa.select(audit).order_by(audit.c.id.desc())).first()
    assert entry is not None and (entry.actor, entry.action) == ("ops", "user_revoke")
    engine.dispose()


def test_an_export_needs_row_level_and_a_refused_one_is_not_recorded(engine) -> None:
    _, before = stored(engine)

    with pytest.raises(Forbidden, match="the manager role may not see row-level data or exports"):
        casework.record_export(engine, MANAGER, "scores", {"countries": None})
    casework.record_export(engine, SEN_ANALYST, "scores", {"countries": ["SEN"]})

    with engine.connect() as conn:
        entries = conn.execute(sa.select(audit).where(audit.c.id > before)).all()
    assert [(e.actor, e.action, e.target) for e in entries] == [("analyst.sen", "export", "scores")]
