"""Data and audit commit or roll back together: a failure after the data write leaves neither.

These run on a fresh database that really commits, so "nothing changed" is what a new connection
sees, not what a rolled-back test transaction hides.
"""
import importlib
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import audit
from audit import Action, audit_event
from ecrf.actor import Actor
from ecrf.audit_check import verify_database
from ecrf.capture import service
from ecrf.db import make_engine, make_session_factory
from ecrf.definitions import load_study
from ecrf.definitions.publish import publish_study
from ecrf.errors import Conflict
from ecrf.models import FormRecord, Subject

STUDY_DIR = Path(__file__).parent / "forms" / "audit-trial"
ACTOR = Actor.cli()
#: The append module itself (``audit.append``, the package attribute, is the function).
APPEND_MODULE = importlib.import_module("audit.append")


class Injected(Exception):
    pass


@pytest.fixture
def committed(new_database):
    """A committed database holding one subject with a saved vitals form; yields a session factory."""
    engine = make_engine(new_database())
    sessions = make_session_factory(engine)
    with sessions() as session:
        publish_study(session, ACTOR, load_study(STUDY_DIR))
        service.enrol_subject(session, ACTOR, "audit-trial", "01", "01-001")
        service.save_form(session, ACTOR, "audit-trial", "01-001", "baseline", "vitals", {"sbp": 120})
    yield sessions
    engine.dispose()


def _state(sessions):
    """What a new session sees: the vitals record, the subjects, the number of events."""
    with sessions() as session:
        record = session.scalar(select(FormRecord).where(FormRecord.form_key == "vitals"))
        subjects = session.scalars(select(Subject.key).order_by(Subject.key)).all()
        events = session.scalar(select(func.count()).select_from(audit_event))
        report = verify_database(session)
        assert report.ok, report.problem
        return (record.data, record.version, record.status), subjects, events


def _fail(*_args, **_kwargs):
    raise Injected("the audit write failed")


def test_failed_audit_append_rolls_back_the_form_save(committed, monkeypatch):
    before = _state(committed)
    monkeypatch.setattr(service, "append_many", _fail)
    with committed() as session, pytest.raises(Injected):
        service.save_form(session, ACTOR, "audit-trial", "01-001", "baseline", "vitals",
                          {"sbp": 180, "assessed": "2026-11-02"}, complete=True, reason="typo")
    assert _state(committed) == before
    assert before[0] == ({"sbp": 120}, 1, "draft")


def test_failed_audit_append_rolls_back_an_enrolment(committed, monkeypatch):
    before = _state(committed)
    monkeypatch.setattr(service, "append", _fail)
    with committed() as session, pytest.raises(Injected):
        service.enrol_subject(session, ACTOR, "audit-trial", "01", "01-002")
    assert _state(committed) == before
    assert before[1] == ["01-001"]


def test_a_writer_that_misread_the_head_cannot_fork_the_chain(committed, monkeypatch):
    """Had two writers read the same head, the second's event number is taken: its insert fails and
    its data change goes with it, so the chain stays single."""
    before = _state(committed)
    real_head = APPEND_MODULE.head

    def stale_head(connection):
        seq, _ = real_head(connection)
        with committed() as other:
            return seq - 1, other.scalar(select(audit_event.c.hash).where(audit_event.c.seq == seq - 1))

    monkeypatch.setattr(APPEND_MODULE, "head", stale_head)
    # The taken event number is refused: by the REPLACE guard on SQLite (an IntegrityError), by the
    # primary key on PostgreSQL (a unique violation, which the service reports as a Conflict).
    with committed() as session, pytest.raises((IntegrityError, Conflict)):
        service.save_form(session, ACTOR, "audit-trial", "01-001", "baseline", "vitals", {"sbp": 125},
                          reason="typo")
    assert _state(committed) == before


def test_append_outside_a_transaction_is_refused(committed):
    with committed.kw["bind"].connect() as connection:
        with pytest.raises(RuntimeError, match="inside the caller's transaction"):
            audit.append(connection, ACTOR.event(Action.LOGIN))
