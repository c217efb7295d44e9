"""Fixtures: a real database per backend, built by the shipped migrations; one transaction per test.

Every database test runs on SQLite, and on PostgreSQL too when ``ECRF_TEST_POSTGRES_URL`` points at
a server (the suite creates its own database there and drops it at the end). Each test runs inside
an outer transaction that is rolled back, so services' own transactions become savepoints.
"""
import contextlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecrf import create_app, migrate
from ecrf.actor import Actor
from ecrf.auth import passwords
from ecrf.db import Database, make_engine, make_session_factory
from ecrf.paths import resource
from ecrf.scratch import scratch_database

# Cheap password hashes in tests (the production cost is measured in bench/, not paid per test).
os.environ["ECRF_ARGON2_TIME_COST"] = "1"
os.environ["ECRF_ARGON2_MEMORY_KIB"] = "1024"
passwords.configure(1, 1024)

POSTGRES_URL = os.environ.get("ECRF_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
FORMS = resource("forms")
TEST_PASSWORD = "correct horse battery"


def fresh_database(backend, tmp_dir):
    """A new, empty database of ``backend``; yields its URL and removes it afterwards."""
    return scratch_database(backend, tmp_dir, POSTGRES_URL, prefix="ecrf_test")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def engine(backend, tmp_path_factory):
    """One migrated database per backend for the whole run."""
    with fresh_database(backend, tmp_path_factory.mktemp("db")) as url:
        eng = make_engine(url)
        migrate.upgrade(eng)
        yield eng
        eng.dispose()


@pytest.fixture
def new_database(backend, tmp_path):
    """Factory: the URL of a fresh, migrated database of the current backend (for tests that must
    really commit, such as several processes appending at once)."""
    stack = contextlib.ExitStack()

    def make():
        url = stack.enter_context(fresh_database(backend, tmp_path))
        eng = make_engine(url)
        migrate.upgrade(eng)
        eng.dispose()
        return url

    yield make
    stack.close()


@pytest.fixture
def connection(engine):
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def db(connection):
    """A session whose commits are savepoints inside the test's rolled-back transaction."""
    session = make_session_factory(connection)()
    yield session
    session.close()


@pytest.fixture
def actor():
    return Actor.cli()


@pytest.fixture
def app(connection):
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "test-secret", "DATABASE_BIND": connection,
                      "INSTANCE_PATH": "/nonexistent-instance"})
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def cli(connection):
    """Run ``ecrf`` commands against the test's database: ``cli("study", "list")``."""
    from ecrf.cli import Context, main

    def invoke(*args, input=None):
        ctx = Context()
        ctx._db = Database(connection)
        return CliRunner().invoke(main, list(args), obj=ctx, input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def load_study(db, actor):
    """Factory: publish a study folder (a name under forms/ or a path); return the loader Study."""
    from ecrf.definitions import load_study as load
    from ecrf.definitions.publish import publish_study

    def loader(name_or_path):
        path = Path(name_or_path)
        if not path.is_absolute():
            path = FORMS / name_or_path
        study = load(path)
        publish_study(db, actor, study)
        return study

    return loader


@pytest.fixture
def make_user(db, actor):
    """Factory: a user holding ``role`` in ``study`` (at ``sites``, or all sites)."""
    from ecrf.auth import accounts

    def make(username, role=None, study=None, sites=(), password=TEST_PASSWORD, must_change=False):
        user = accounts.create_user(db, actor, username, password, name=username.title(),
                                    must_change_password=must_change)
        if role:
            accounts.grant_role(db, actor, username, study, role, sites)
        return user

    return make


def _csrf_from(response):
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def csrf_token(client, path="/login"):
    return _csrf_from(client.get(path))


@pytest.fixture
def csrf_from():
    """The CSRF token in a page response: ``csrf_from(client.get(path))``."""
    return _csrf_from


@pytest.fixture
def idle_out(db):
    """Make every open browser session look idle for ``minutes`` (the server's idle timeout reads
    the session row's last_seen_at)."""
    import datetime as dt

    from sqlalchemy import update

    from ecrf.models import WebSession

    def idle(minutes=31):
        db.execute(update(WebSession).where(WebSession.ended_at.is_(None)).values(
            last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes)))
        db.flush()

    return idle


@pytest.fixture
def login_as(client):
    """Sign in through the real /login form (with its CSRF token)."""

    def login(username, password=TEST_PASSWORD):
        token = csrf_token(client)
        return client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token})

    return login


def _write_forms_study(root, forms, *, study_id="t", log_forms=(), visits=None, sites=None, subjects=None):
    """A study folder holding ``forms`` ({form id: schema}): one visit v1 with every visit form, the
    ``log_forms`` as logs, sites 01 (Europe/Copenhagen) and 02 (UTC) unless ``sites`` says otherwise,
    and the ``subjects`` settings (id template and pattern) when given."""
    folder = Path(root) / study_id
    folder.mkdir(parents=True)
    study = {"id": study_id, "title": f"Study {study_id}",
             "sites": sites or [{"id": "01", "name": "Site one", "timezone": "Europe/Copenhagen"},
                                {"id": "02", "name": "Site two", "timezone": "UTC"}],
             "visits": visits or [{"id": "v1", "label": "Visit 1", "day": 0,
                                   "forms": [f for f in forms if f not in log_forms]}]}
    if log_forms:
        study["log_forms"] = list(log_forms)
    if subjects:
        study["subjects"] = subjects
    (folder / "study.json").write_text(json.dumps(study), encoding="utf-8")
    for form_id, schema in forms.items():
        (folder / f"{form_id}.json").write_text(json.dumps(schema), encoding="utf-8")
    return folder


@pytest.fixture
def write_study():
    """Write a study folder from form schemas: ``write_study(root, {"f": schema}, log_forms=...)``."""
    return _write_forms_study


@pytest.fixture
def form_def(tmp_path):
    """Factory: the FormDef of a form schema, loaded (not stored) by the real loader."""
    from ecrf.definitions import load_study as load

    counter = iter(range(1000))

    def make(schema, form_id="f"):
        folder = _write_forms_study(tmp_path / f"defs{next(counter)}", {form_id: schema})
        return load(folder).forms[form_id]

    return make


def run_processes(target, arguments, timeout):
    """Run ``target(*args, start)`` in a fresh (spawned) process per ``args`` of ``arguments``, all
    released at once by the ``start`` event, and assert that each exits 0 within ``timeout``
    seconds (a process still running then is killed)."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=target, args=(*args, start)) for args in arguments]
    for process in workers:
        process.start()
    try:
        start.set()
        for process in workers:
            process.join(timeout)
    finally:
        for process in workers:
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in workers] == [0] * len(workers)
