"""``ecrf demo`` creates accounts with a published password: it refuses to in a production
configuration or on a database that holds real users, unless told to (--allow-demo-accounts), with a
one-line message and exit 1; on a fresh machine (no settings) it runs as development."""
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ecrf import migrate
from ecrf.actor import Actor
from ecrf.auth import accounts
from ecrf.cli import main
from ecrf.db import make_engine, make_session_factory
from ecrf.models import User
from ecrf.paths import resource

PASSWORD = "correct horse battery"


@pytest.fixture
def demo_env(new_database, tmp_path):
    """The environment of a machine with only a database URL set, and a forms folder holding the
    small demo study (the demo loads every study it finds)."""
    forms = tmp_path / "forms"
    shutil.copytree(resource("forms") / "demo", forms / "demo")
    return {"ECRF_DATABASE_URL": new_database(), "ECRF_INSTANCE_PATH": str(tmp_path / "instance"),
            "ECRF_FORMS_PATH": str(forms), "ECRF_ENV": None, "ECRF_SECRET_KEY": None}


def _demo(env, *args):
    return CliRunner().invoke(main, ["demo", "--no-serve", *args], env=env)


def _usernames(url):
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(User.username)))
    finally:
        engine.dispose()


def _add_real_user(url):
    engine = make_engine(url)
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session:
        accounts.create_user(session, Actor.cli(), "alice", PASSWORD)
    engine.dispose()


def test_the_demo_runs_as_development_on_a_fresh_machine(demo_env):
    result = _demo(demo_env)
    assert result.exit_code == 0, result.output
    assert "ecrf-demo-2026" in result.output
    assert {"admin", "monitor", "staff"} <= _usernames(demo_env["ECRF_DATABASE_URL"])
    assert _demo(demo_env).exit_code == 0  # running it again reuses what is there


@pytest.mark.parametrize("production", [{"ECRF_ENV": "production", "ECRF_SECRET_KEY": "k" * 32},
                                        {"ECRF_SECRET_KEY": "k" * 32}])
def test_the_demo_refuses_a_production_configuration(demo_env, production):
    result = _demo({**demo_env, **production})
    assert result.exit_code == 1
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "production" in message and "--allow-demo-accounts" in message


def test_the_demo_refuses_a_database_with_real_users_unless_told(demo_env):
    url = demo_env["ECRF_DATABASE_URL"]
    _add_real_user(url)
    result = _demo(demo_env)
    assert result.exit_code == 1 and "1 other user(s)" in result.output
    assert _usernames(url) == {"alice"}
    allowed = _demo(demo_env, "--allow-demo-accounts")
    assert allowed.exit_code == 0, allowed.output
    assert "admin" in _usernames(url)


def test_the_demo_randomizes_a_randomized_trial_through_its_list(new_database, tmp_path):
    """The demo's randomized reference trial (MESRIX-more, masked) gets its concealed list and its
    enrolled sample subjects are allocated by the randomization service, audited like any other."""
    from sqlalchemy import text

    from ecrf.audit_check import verify_database

    forms = tmp_path / "forms"
    shutil.copytree(resource("forms") / "mesrix-more", forms / "mesrix-more")
    url = new_database()
    env = {"ECRF_DATABASE_URL": url, "ECRF_INSTANCE_PATH": str(tmp_path / "instance"),
           "ECRF_FORMS_PATH": str(forms), "ECRF_ENV": None, "ECRF_SECRET_KEY": None}
    assert _demo(env).exit_code == 0
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            enrolled = connection.execute(text("SELECT arm FROM subject WHERE state = 'enrolled'")).scalars().all()
            slots = connection.execute(text("SELECT count(*) FROM allocation_slot")).scalar_one()
        assert enrolled and all(arm in ("msc", "placebo") for arm in enrolled)
        assert slots >= len(enrolled)
        with make_session_factory(engine)() as session:
            assert verify_database(session).ok
    finally:
        engine.dispose()
