"""Fixtures for the audit tests: a small study with every kind of field (tests/audit/forms/audit-trial:
two sites, an eligibility form, a repeating group, checkboxes and a log form), and an attacker who
can drop the audit triggers inside the test's rolled-back transaction."""
import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from audit import audit_event, ddl
from ecrf.actor import Actor
from ecrf.audit_check import verify_database
from ecrf.capture.service import enrol_subject, save_form
from ecrf.capture.subjects import change_state
from ecrf.db import make_engine, make_session_factory
from ecrf.models.append_only import APPEND_ONLY
from ecrf.definitions import load_study as load_study_folder
from ecrf.definitions.publish import publish_study

STUDY_DIR = Path(__file__).parent / "forms" / "audit-trial"
STUDY = "audit-trial"


@dataclasses.dataclass
class Trial:
    """The audit-trial study, loaded, with helpers that write through the capture services."""

    db: object
    actor: object
    key: str = STUDY

    def enrol(self, subject, site="01"):
        return enrol_subject(self.db, self.actor, self.key, site, subject)

    def save(self, subject, visit, form, data, **kwargs):
        return save_form(self.db, self.actor, self.key, subject, visit, form, data, **kwargs)


def write_history(trial):
    """A realistic history written only through the capture services (about 70 events): creates,
    updates with reasons, cleared fields, a repeating group edited in place, log forms, a withdrawal."""
    trial.enrol("01-001")
    trial.enrol("02-001", site="02")
    # Eligibility decides the subject's state: 01-001 enrolled, 02-001 a screen failure.
    trial.save("01-001", "screening", "ie", {"inc_age": True, "exc_preg": False}, complete=True)
    trial.save("02-001", "screening", "ie", {"inc_age": False, "exc_preg": False}, complete=True)
    # Create, then update with a reason, then clear a field, then complete.
    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "weight": 70.5, "comment": "first"})
    trial.save("01-001", "baseline", "vitals", {"sbp": 125, "weight": 70.5, "comment": "first"},
               reason="transcription error")
    trial.save("01-001", "baseline", "vitals", {"sbp": 125, "weight": 70.5}, reason="comment withdrawn")
    trial.save("01-001", "baseline", "vitals", {"sbp": 125, "weight": 71, "assessed": "2026-11-02"},
               complete=True, reason="weighed again")
    # A repeating group: rows added, edited in place (an empty row filled, a row emptied), removed.
    samples = [
        {"tubes": [{"tube": "EDTA", "volume": 4.5}, {}], "symptoms": ["cough"]},
        {"tubes": [{"tube": "EDTA", "volume": 4.5}, {"tube": "serum"}], "symptoms": ["cough", "fever"]},
        {"tubes": [{}, {"tube": "serum", "volume": 2}], "symptoms": ["fever"]},
        {"tubes": [{"tube": "serum", "volume": 2}], "symptoms": [], "taken": "2026-11-02"},
        {"taken": "2026-11-03"},
    ]
    for n, data in enumerate(samples):
        trial.save("01-001", "baseline", "samples", data, reason=None if n == 0 else f"correction {n}")
    # Log form entries, one changed later.
    trial.save("01-001", "", "ae", {"term": "Headache", "grade": 1})
    trial.save("01-001", "", "ae", {"term": "Nausea"})
    trial.save("01-001", "", "ae", {"term": "Headache", "grade": 2}, seq=1, reason="worsened")
    change_state(trial.db, trial.actor, trial.key, "01-001", "withdrawn", "moved abroad")


@pytest.fixture
def trial(db, actor, load_study):
    load_study(STUDY_DIR)
    return Trial(db, actor)


@pytest.fixture
def history(trial):
    """The audit-trial study with ``write_history`` saved in the test's transaction."""
    write_history(trial)
    return trial


@pytest.fixture
def events(db):
    """All stored events (rows), in order: ``events()``, or ``events(action="update")``."""

    def fetch(**where):
        query = select(audit_event).order_by(audit_event.c.seq)
        for name, value in where.items():
            query = query.where(audit_event.c[name] == value)
        return db.execute(query).all()

    return fetch


class Attacker:
    """Someone with write access to the database: drops the triggers, then edits the log directly.
    Everything happens in the test's transaction, which is rolled back (triggers included)."""

    def __init__(self, connection):
        self.connection = connection

    def drop_triggers(self, tables=APPEND_ONLY):
        """Drop the append-only triggers of ``tables`` (every declared table by default)."""
        for statement in ddl.drop_statements(self.connection.dialect.name, tables):
            self.connection.execute(text(statement))

    def restore_triggers(self, tables=APPEND_ONLY):
        """Put the triggers back as declared, as a careful forger would."""
        for statement in ddl.create_statements(self.connection.dialect.name, tables):
            self.connection.execute(text(statement))

    def update(self, seq, **values):
        self.connection.execute(update(audit_event).where(audit_event.c.seq == seq).values(**values))

    def delete(self, seq):
        self.connection.execute(audit_event.delete().where(audit_event.c.seq == seq))

    def row(self, seq):
        return dict(self.connection.execute(
            select(audit_event).where(audit_event.c.seq == seq)).one()._mapping)

    def swap(self, a, b):
        """Swap the contents of two events, each keeping its sequence number."""
        row_a, row_b = self.row(a), self.row(b)
        self.update(a, **{k: v for k, v in row_b.items() if k != "seq"})
        self.update(b, **{k: v for k, v in row_a.items() if k != "seq"})


@pytest.fixture
def attacker(connection):
    return Attacker(connection)


class CommittedLog:
    """A database that really commits, holding ``write_history``: for what only other connections
    (and processes) can show. ``tamper`` edits it as the Attacker would, and commits."""

    def __init__(self, url):
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)
        with self.sessions() as session:
            publish_study(session, Actor.cli(), load_study_folder(STUDY_DIR))
            write_history(Trial(session, Actor.cli()))

    @property
    def head(self):
        with self.engine.connect() as conn:
            return conn.scalar(select(func.max(audit_event.c.seq)))

    def hash_of(self, seq):
        with self.engine.connect() as conn:
            return conn.scalar(select(audit_event.c.hash).where(audit_event.c.seq == seq))

    def tamper(self, change):
        """``change(attacker)`` with the triggers dropped, committed."""
        with self.engine.begin() as conn:
            attacker = Attacker(conn)
            attacker.drop_triggers()
            change(attacker)

    def verify(self, jobs=1, checkpoint=None):
        with self.sessions() as session:
            return verify_database(session, checkpoint, jobs=jobs)


@pytest.fixture
def committed_log(new_database):
    log = CommittedLog(new_database())
    yield log
    log.engine.dispose()
