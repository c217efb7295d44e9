"""Queries (discrepancy management): a question on one field of a form record.

Raised by a monitor or data manager, or automatically by a failed soft edit check when the form is
saved; answered by site staff (with or without a data change); closed or re-opened by the monitor.
Each step is a message in the query's thread and an audit event. States: open → answered → closed,
closed or answered → open again, open → closed (raised in error).
"""
import dataclasses

from sqlalchemy import func, select

from audit import Action, append
from ecrf.db import utcnow, write_transaction
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import DataQuery, FormRecord, QueryMessage, QueryState, Site, Subject
from ecrf.review.common import form_fields, get_record, record_where, top_field
from ecrf.studies import get_study

MAX_TEXT = 4000
#: The author named on automatic queries' first message.
EDIT_CHECK = "edit check"
#: The ``source`` of this workflow's query events (capture's soft-check events use "soft_check").
SOURCE = "query"
_DONE = {"answer": "answered", "close": "closed", "reopen": "re-opened"}


def _text(text, required=True):
    text = (text or "").strip()
    if required and not text:
        raise Invalid("a message is required", [("/text", "write a message")])
    if len(text) > MAX_TEXT:
        raise Invalid("the message is too long", [("/text", f"at most {MAX_TEXT} characters")])
    return text


def get_query(session, study, query_id):
    """Query ``query_id`` of ``study``; NotFound for another study's id (or none)."""
    query = session.scalar(select(DataQuery).where(DataQuery.id == query_id, DataQuery.study_id == study.id)) \
        if isinstance(query_id, int) else None
    if query is None:
        raise NotFound(f"no query {query_id!r} in study {study.key!r}")
    return query


def _event(actor, query, old_state, kind, text):
    return actor.event(Action.QUERY, field=query.field, old=old_state,
                       new={"source": SOURCE, "query": query.id, "state": str(query.state), "step": kind},
                       reason=text or None, **record_where(query.record))


def _add(session, actor, query, kind, text, old_state, data_changed=False, author=None):
    query.messages.append(QueryMessage(author_id=None if author else actor.user_id,
                                       author_name=author or actor.name, kind=kind, text=text,
                                       data_changed=data_changed))
    query.updated_at = utcnow()
    session.flush()
    append(session.connection(), _event(actor, query, old_state, kind, text))


def _new_query(session, actor, record, field, text, origin, author=None):
    query = DataQuery(study_id=record.subject.study_id, subject_id=record.subject_id, record_id=record.id,
                      field=field, state=QueryState.OPEN, origin=origin)
    session.add(query)
    session.flush()
    _add(session, actor, query, "raise", text, None, author=author)
    return query


def raise_query(session, actor, study_key, record_id, field, text):
    """Raise a manual query on ``field`` (a top-level JSON pointer such as ``/sbp``) of a record."""
    from ecrf.review.locks import assert_unlocked

    text = _text(text)
    with write_transaction(session):
        study = get_study(session, study_key)
        record = get_record(session, study, record_id)
        names = form_fields(record)
        if not isinstance(field, str) or field.lstrip("/") not in names:
            raise Invalid("choose a field of this form", [("/field", "not a field of this form")])
        assert_unlocked(session, record)
        query = _new_query(session, actor, record, "/" + field.lstrip("/"), text, "manual")
    return query


def sync_automatic(session, actor, record, failing, *, new_record=False):
    """Called by capture inside its save transaction with the soft checks failing after the save
    (``{pointer: [message]}``): raise an automatic query for each failure that has none open or
    answered, and close the automatic queries whose check now passes. A ``new_record`` has none."""
    current = {(top_field(p), m) for p, messages in (failing or {}).items() for m in messages}
    existing = {}
    if record.id is not None and not new_record:
        for query in session.scalars(select(DataQuery).where(
                DataQuery.record_id == record.id, DataQuery.origin == "auto",
                DataQuery.state != QueryState.CLOSED)):
            existing[(query.field, query.messages[0].text)] = query
    raised = []
    for field, message in sorted(current - set(existing)):
        raised.append(_new_query(session, actor, record, field, message, "auto", author=EDIT_CHECK))
    for key in sorted(set(existing) - current):
        query = existing[key]
        old = str(query.state)
        query.state = QueryState.CLOSED
        _add(session, actor, query, "close", "The edit check passes after the change.", old,
             author=EDIT_CHECK)
    return raised


def _step(session, actor, study_key, query_id, allowed_from, new_state, kind, text, data_changed=False):
    with write_transaction(session):
        study = get_study(session, study_key)
        query = get_query(session, study, query_id)
        if query.state not in allowed_from:
            raise Conflict(f"a query that is {query.state} cannot be {_DONE[kind]}")
        if kind == "answer":
            from ecrf.review.locks import assert_unlocked

            assert_unlocked(session, query.record)
        old = str(query.state)
        query.state = new_state
        _add(session, actor, query, kind, text, old, data_changed)
    return query


def answer_query(session, actor, study_key, query_id, text, data_changed=False):
    """Site staff answer an open query (saying whether they changed the data to resolve it)."""
    return _step(session, actor, study_key, query_id, {QueryState.OPEN}, QueryState.ANSWERED, "answer",
                 _text(text), bool(data_changed))


def close_query(session, actor, study_key, query_id, text=None):
    """The monitor closes an open or answered query."""
    return _step(session, actor, study_key, query_id, {QueryState.OPEN, QueryState.ANSWERED},
                 QueryState.CLOSED, "close", _text(text, required=False))


def reopen_query(session, actor, study_key, query_id, text):
    """The monitor re-opens an answered or closed query, saying why."""
    return _step(session, actor, study_key, query_id, {QueryState.ANSWERED, QueryState.CLOSED},
                 QueryState.OPEN, "reopen", _text(text))


@dataclasses.dataclass(frozen=True)
class QueryRow:
    query: DataQuery
    subject: str
    site: str
    visit: str
    form: str


def list_queries(session, study, site_ids=None, *, state=None, site=None, subject=None, form=None,
                 origin=None, limit=500):
    """The study's queries (at ``site_ids``, None: all), newest first, with optional filters."""
    query = (select(DataQuery, Subject.key, Site.key, FormRecord.visit_key, FormRecord.form_key)
             .join(Subject, Subject.id == DataQuery.subject_id).join(Site, Site.id == Subject.site_id)
             .join(FormRecord, FormRecord.id == DataQuery.record_id)
             .where(DataQuery.study_id == study.id))
    if site_ids is not None:
        query = query.where(Subject.site_id.in_(site_ids or [-1]))
    if state:
        query = query.where(DataQuery.state == state)
    if site is not None:
        query = query.where(Subject.site_id == site.id)
    if subject:
        query = query.where(Subject.key == subject)
    if form:
        query = query.where(FormRecord.form_key == form)
    if origin:
        query = query.where(DataQuery.origin == origin)
    rows = session.execute(query.order_by(DataQuery.updated_at.desc(), DataQuery.id.desc()).limit(limit))
    return [QueryRow(q, subject_key, site_key, visit_key, form_key)
            for q, subject_key, site_key, visit_key, form_key in rows]


def counts_by_subject(session, subject_ids):
    """{subject id: {"open": n, "answered": m}} over queries not closed."""
    counts = {}
    if not subject_ids:
        return counts
    for subject_id, state, n in session.execute(
            select(DataQuery.subject_id, DataQuery.state, func.count())
            .where(DataQuery.subject_id.in_(list(subject_ids)), DataQuery.state != QueryState.CLOSED)
            .group_by(DataQuery.subject_id, DataQuery.state)):
        counts.setdefault(subject_id, {"open": 0, "answered": 0})[state] = n
    return counts


def queries_of_record(session, record):
    return list(session.scalars(select(DataQuery).where(DataQuery.record_id == record.id)
                                .order_by(DataQuery.id)))
