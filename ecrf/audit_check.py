"""``ecrf audit verify``: the chain is intact, replaying it reproduces every stored value, every
issued document is the one the log recorded, and the database still refuses to change history.

One pass over the log checks each event's links and hash and feeds it to the replay; the replayed
state is then compared with every form record and subject in the database (records in id order,
then subjects), with every e-signature, and with every issued SAE report (its PDF's sha256
recomputed) and receipt (``ecrf.reports.issued``); the log is checked for any of these the database
no longer holds. The first difference of each kind is named: an event number for a broken chain, a
record, subject, signature, report or receipt for data the log does not explain. Last, every trigger
the append-only list declares (``ecrf.models.append_only``) must be in place, and each missing,
disabled or replaced one is named.

Everything is read in one snapshot (REPEATABLE READ on PostgreSQL, one read transaction in SQLite's
WAL mode), so saves committed while verify runs cannot make it report a difference that is not there.
With ``jobs`` above 1, worker processes check ranges of the chain on their own connections while this
one replays (``audit.parallel``): they read the events up to the head this snapshot saw, which no
one can change, and on PostgreSQL they share the snapshot itself.
"""
import dataclasses

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from audit import ReplayState, audit_event, verify_chain
from audit.ddl import trigger_problems
from audit.replay import READS as REPLAY_READS
from ecrf.models import FormRecord, FormVersion, Site, Study, Subject
from ecrf.models.append_only import APPEND_ONLY


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    events: int
    head_seq: int
    head_hash: str
    records: int = 0
    subjects: int = 0
    #: Every problem found: the first of each kind of data (or the broken chain), then each
    #: append-only trigger that is not in place.
    problems: tuple = ()
    #: The first bad event, when the chain itself is broken.
    bad_event: int | None = None
    #: E-signatures proven: each matches its sign event, and the data the log held at that moment
    #: hashes to the signed hash.
    signatures: int = 0
    #: Issued SAE reports and receipts proven against their events.
    reports: int = 0
    receipts: int = 0
    #: Append-only triggers checked.
    triggers: int = 0

    @property
    def ok(self):
        return not self.problems

    @property
    def problem(self):
        """The first problem, or None."""
        return self.problems[0] if self.problems else None


def verify_database(session, checkpoint=None, jobs=1):
    """Verify the chain (against ``checkpoint`` ``(seq, hash)`` if given), that it explains the
    stored form records, subjects, signatures and issued documents, and that the append-only
    triggers are in place; return a VerifyReport naming the problems.

    ``jobs`` is how many processes may check the chain: more than one only where other connections
    see what this session sees (``parallel_possible``); the report is the same either way. Workers
    see only committed data: a caller holding uncommitted events passes 1 (with more, the workers
    raise an error on the events they cannot see, never report them missing).
    """
    from ecrf.reports.issued import compare_issued

    connection = _snapshot(session)
    state = ReplayState()
    jobs = jobs if parallel_possible(session.get_bind()) else 1
    chain = verify_chain(connection, against=checkpoint, on_event=state.apply, jobs=jobs,
                         needs=REPLAY_READS)
    triggers = trigger_problems(connection, APPEND_ONLY)
    checked = sum(len(table.trigger_sql(connection.dialect.name)) for table in APPEND_ONLY)
    if not chain.ok:
        return VerifyReport(chain.count, chain.head_seq, chain.head_hash,
                            problems=(chain.problem.message, *triggers), bad_event=chain.problem.seq,
                            triggers=checked)
    counts = {"records": 0, "subjects": 0, "signatures": 0, "reports": 0, "receipts": 0}
    problems = (_compare_records(session, state, counts), _compare_subjects(session, state, counts),
                _compare_signatures(session, state, counts), compare_issued(session, state.documents, counts))
    return VerifyReport(chain.count, chain.head_seq, chain.head_hash, counts["records"], counts["subjects"],
                        (*(p for p in problems if p is not None), *triggers),
                        signatures=counts["signatures"], reports=counts["reports"],
                        receipts=counts["receipts"], triggers=checked)


def parallel_possible(bind):
    """Whether worker processes on their own connections can verify ``bind``'s log: an engine on a
    database file or server, not an in-memory database nor a connection whose transaction the caller
    holds (a test's, rolled back at its end: other connections never see its rows)."""
    if not isinstance(bind, Engine):
        return False
    url = bind.url
    return not (url.get_backend_name() == "sqlite"
                and (url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"))


def _snapshot(session):
    """The session's connection, in a repeatable-read transaction on PostgreSQL when we start it."""
    bind = session.get_bind()
    if (isinstance(bind, Engine) and bind.dialect.name == "postgresql"
            and not session.in_transaction()):
        return session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                     "postgresql_readonly": True})
    return session.connection()


def _records_query():
    return (select(FormRecord.id, FormRecord.data, FormRecord.missing, FormRecord.status,
                   FormRecord.visit_key, FormRecord.form_key, FormRecord.seq, Subject.key,
                   Study.key, Site.key, FormVersion.form_key, FormVersion.content_hash)
            .join(Subject, Subject.id == FormRecord.subject_id)
            .join(Study, Study.id == Subject.study_id)
            .join(Site, Site.id == Subject.site_id)
            .join(FormVersion, FormVersion.id == FormRecord.form_version_id)
            .order_by(FormRecord.id)
            .execution_options(yield_per=1000))


def _compare_records(session, state, counts):
    stored = set()
    # Closed on an early return too: on PostgreSQL this is a server-side cursor.
    with session.execute(_records_query()) as rows:
        problem = _compare_each_record(rows, state, counts, stored)
    if problem is not None:
        record_id, message = problem
        last = _last_event(session, record_id)
        return message if last is None else f"{message} (last event {last})"
    unstored = sorted(set(state.records) - stored)
    if unstored:
        replayed = state.records[unstored[0]]
        return (f"form record {unstored[0]} ({replayed.study} {replayed.subject} {replayed.form}) is in "
                f"the log (last event {_last_event(session, unstored[0])}) but not stored")
    return None


def _last_event(session, record_id):
    return session.scalar(select(func.max(audit_event.c.seq)).where(audit_event.c.record == record_id))


def _compare_each_record(rows, state, counts, stored):
    """None, or (record id, what is wrong) for the first record the log does not explain."""
    for (record_id, data, missing, status, visit, form, seq, subject, study, site, version_form,
         version_hash) in rows:
        stored.add(record_id)
        label = f"form record {record_id} ({study} {subject} {visit or 'log'} {form} #{seq})"
        replayed = state.records.get(record_id)
        if replayed is None:
            return record_id, f"{label} has no events in the log"
        place = (study, site, subject, visit or None, form)
        if place != replayed.place:
            return record_id, f"{label} is filed as {_place(place)} but the log has it as {_place(replayed.place)}"
        pointer = first_difference(replayed.data, data)
        if pointer is not None:
            return record_id, f"{label}: stored data differs from the log at {pointer or 'the document root'}"
        if replayed.status != status:
            return record_id, f"{label}: stored status {status!r} differs from the log's {replayed.status!r}"
        pointer = first_difference(replayed.missing, missing or {})
        if pointer is not None:
            return record_id, (f"{label}: missing-data flags differ from the log at "
                               f"{pointer or 'the document root'}")
        version = f"{version_form}@{version_hash[:12]}"
        if replayed.form_version is not None and replayed.form_version != version:
            return record_id, (f"{label}: stored form version {version} differs from the log's "
                               f"{replayed.form_version}")
        counts["records"] += 1
    return None


def _compare_subjects(session, state, counts):
    stored = set()
    with session.execute(
            select(Subject.key, Subject.state, Study.key, Site.key, Subject.arm)
            .join(Study, Study.id == Subject.study_id).join(Site, Site.id == Subject.site_id)
            .order_by(Subject.id).execution_options(yield_per=1000)) as rows:
        problem = _compare_each_subject(rows, state, counts, stored)
    if problem is not None:
        return problem
    unstored = sorted(set(state.subjects) - stored, key=lambda k: state.subjects[k].last_seq)
    if unstored:
        study_key, key = unstored[0]
        return (f"subject {study_key} {key} is in the log (last event "
                f"{state.subjects[unstored[0]].last_seq}) but not stored")
    return None


def _compare_each_subject(rows, state, counts, stored):
    for key, subject_state, study_key, site_key, arm in rows:
        stored.add((study_key, key))
        replayed = state.subjects.get((study_key, key))
        if replayed is None:
            return f"subject {study_key} {key} (state {subject_state!r}) has no events in the log"
        if replayed.state != subject_state:
            return (f"subject {study_key} {key}: stored state {subject_state!r} differs from the log's "
                    f"{replayed.state!r} (last event {replayed.last_seq})")
        if replayed.site != site_key:
            return (f"subject {study_key} {key}: stored at site {site_key!r} but the log has site "
                    f"{replayed.site!r} (last event {replayed.last_seq})")
        logged_arm, arm_seq = state.arms.get((study_key, key), (None, None))
        if arm != logged_arm:
            # The arm itself is not named: whoever reads this report may be blinded.
            return (f"subject {study_key} {key}: the stored arm differs from the log's "
                    + (f"(randomized at event {arm_seq})" if arm_seq else "(never randomized in the log)"))
        counts["subjects"] += 1
    return None


def _place(values):
    study, site, subject, visit, form = values
    return f"{study}/{site}/{subject}/{visit or 'log'}/{form}"


def first_difference(logged, stored, pointer=""):
    """The JSON pointer of the first place where two JSON values differ, or None when they are the
    same JSON: numbers compare by value (1 and 1.0 are one JSON number), but true is not 1."""
    if isinstance(logged, dict) and isinstance(stored, dict):
        for key in sorted(logged.keys() | stored.keys()):
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in logged or key not in stored:
                return child
            found = first_difference(logged[key], stored[key], child)
            if found is not None:
                return found
        return None
    if isinstance(logged, list) and isinstance(stored, list):
        if len(logged) != len(stored):
            return pointer
        for index, (a, b) in enumerate(zip(logged, stored, strict=True)):
            found = first_difference(a, b, f"{pointer}/{index}")
            if found is not None:
                return found
        return None
    if _json_kind(logged) != _json_kind(stored) or logged != stored:
        return pointer
    return None


def _json_kind(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value)


def _compare_signatures(session, state, counts):
    """Each stored signature is the one its ``sign`` event describes (signer, name, meaning, scope,
    records, hash), and the records as the log had them when it was signed hash to that hash; and
    every signature in the log is stored."""
    from ecrf.models import Signature
    from ecrf.review.signatures import content_hash

    stored = set()
    for row in session.scalars(select(Signature).order_by(Signature.id)):
        stored.add(row.id)
        label = f"signature {row.id} ({row.scope} of subject {row.subject_id}, by {row.printed_name})"
        replayed = state.signatures.get(row.id)
        if replayed is None:
            return f"{label} has no sign event in the log"
        value = replayed.value
        logged = (replayed.actor_id, value.get("name"), value.get("meaning"), value.get("scope"),
                  value.get("records"), value.get("hash"))
        if logged != (row.signer_id, row.printed_name, row.meaning, row.scope, row.record_ids, row.data_hash):
            return f"{label} differs from its sign event {replayed.seq}"
        if len(replayed.signed) != len(row.record_ids) or content_hash(replayed.signed) != row.data_hash:
            return (f"{label}: the data the log held when it was signed (event {replayed.seq}) does not "
                    f"hash to the signed hash")
        counts["signatures"] += 1
    unstored = sorted(set(state.signatures) - stored)
    if unstored:
        return f"signature {unstored[0]} is in the log (event {state.signatures[unstored[0]].seq}) but not stored"
    return None
