"""Fixtures for the audit tests: a small study with every kind of field (tests/audit/forms/audit-trial:
two sites, an eligibility form, a repeating group, checkboxes and a log form), and an attacker who
can drop the audit triggers inside the test's rolled-back transaction."""
import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from audit import audit_event, ddl
from ecrf.capture.service import enrol_subject, save_form

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


@pytest.fixture
def trial(db, actor, load_study):
    load_study(STUDY_DIR)
    return Trial(db, actor)


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

    def drop_triggers(self):
        for statement in ddl.drop_statements(self.connection.dialect.name):
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
