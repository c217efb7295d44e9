"""``ecrf audit verify``: the chain is intact and replaying it reproduces every stored value.

One pass over the log checks each event's links and hash and feeds it to the replay; the replayed
state is then compared with every form record and subject in the database. The first difference is
named: an event number for a broken chain, a record or subject for data the log does not explain.
"""
import dataclasses

from sqlalchemy import select

from audit import ReplayState, verify_chain
from ecrf.models import FormRecord, Site, Study, Subject, SubjectVisit


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    events: int
    head_seq: int
    head_hash: str
    records: int = 0
    subjects: int = 0
    problem: str | None = None

    @property
    def ok(self):
        return self.problem is None


def verify_database(session, checkpoint=None):
    state = ReplayState()
    connection = session.connection()
    chain = verify_chain(connection, against=checkpoint, on_event=state.apply)
    if not chain.ok:
        return VerifyReport(chain.count, chain.head_seq, chain.head_hash, problem=chain.problem.message)
    records = subjects = 0
    for record, subject_key, study_key in session.execute(
            select(FormRecord, Subject.key, Study.key).join(Subject, Subject.id == FormRecord.subject_id)
            .join(Study, Study.id == Subject.study_id).order_by(FormRecord.id)):
        replayed = state.records.get(record.id)
        label = (f"form record {record.id} ({study_key} {subject_key} "
                 f"{record.visit_key or 'log'} {record.form_key} #{record.seq})")
        if replayed is None:
            return _unexplained(chain, records, subjects, f"{label} has no events in the log")
        if replayed.data != record.data:
            return _unexplained(chain, records, subjects,
                                f"{label}: stored data differs from the log (last event {replayed.last_seq})")
        if replayed.status != record.status:
            return _unexplained(chain, records, subjects,
                                f"{label}: stored status {record.status!r} differs from the log's "
                                f"{replayed.status!r}")
        if replayed.missing != (record.missing or {}):
            return _unexplained(chain, records, subjects, f"{label}: missing-data flags differ from the log")
        records += 1
    for key, state_value, study_key, site_key in session.execute(
            select(Subject.key, Subject.state, Study.key, Site.key)
            .join(Study, Study.id == Subject.study_id).join(Site, Site.id == Subject.site_id)
            .order_by(Subject.id)):
        replayed = state.subjects.get((study_key, key))
        if replayed is None or replayed[0] != state_value:
            return _unexplained(chain, records, subjects,
                                f"subject {study_key} {key}: stored state {state_value!r} differs from "
                                f"the log's {replayed[0] if replayed else None!r}")
        subjects += 1
    for visit_key, visit_date, subject_key, study_key in session.execute(
            select(SubjectVisit.visit_key, SubjectVisit.visit_date, Subject.key, Study.key)
            .join(Subject, Subject.id == SubjectVisit.subject_id)
            .join(Study, Study.id == Subject.study_id).order_by(SubjectVisit.id)):
        stored = visit_date.isoformat() if visit_date else None
        if state.visits.get((study_key, subject_key, visit_key)) != stored:
            return _unexplained(chain, records, subjects,
                                f"visit {study_key} {subject_key} {visit_key}: stored date {stored!r} "
                                "differs from the log")
    for record_id in sorted(set(state.records) - {r for r in session.scalars(select(FormRecord.id))}):
        return _unexplained(chain, records, subjects, f"form record {record_id} is in the log but not stored")
    return VerifyReport(chain.count, chain.head_seq, chain.head_hash, records, subjects)


def _unexplained(chain, records, subjects, message):
    return VerifyReport(chain.count, chain.head_seq, chain.head_hash, records, subjects, message)
