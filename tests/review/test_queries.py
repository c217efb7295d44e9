"""Queries: raised by hand or by a soft check, answered, closed and re-opened; each step audited."""
import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.models import QueryState
from ecrf.review import queries


def _query_events(db, record_id):
    return [(r.field, r.old_value, r.new_value, r.actor_name) for r in db.execute(
        select(audit_event).where(audit_event.c.record == record_id, audit_event.c.action == "query")
        .order_by(audit_event.c.seq))]


def test_a_query_goes_open_answered_closed_reopened_with_its_thread(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    query = queries.raise_query(db, trial.actor("mon", "monitor"), "revw", record.id, "/sbp", "Source says 130?")
    assert query.state == QueryState.OPEN and query.origin == "manual"
    queries.answer_query(db, trial.actor("nurse", "site_staff"), "revw", query.id, "Corrected to 130.",
                         data_changed=True)
    assert query.state == QueryState.ANSWERED
    queries.close_query(db, trial.actor("mon", "monitor"), "revw", query.id)
    assert query.state == QueryState.CLOSED
    queries.reopen_query(db, trial.actor("mon", "monitor"), "revw", query.id, "Still differs.")
    assert query.state == QueryState.OPEN
    thread = [(m.kind, m.author_name, m.text, m.data_changed) for m in query.messages]
    assert thread == [("raise", "mon", "Source says 130?", False), ("answer", "nurse", "Corrected to 130.", True),
                      ("close", "mon", "", False), ("reopen", "mon", "Still differs.", False)]
    assert all(m.created_at.tzinfo is not None for m in query.messages)
    events = _query_events(db, record.id)
    assert [e[3] for e in events] == ["mon", "nurse", "mon", "mon"]
    assert events[1][1] == '"open"' and '"state":"answered"' in events[1][2]


def test_wrong_transitions_and_bad_input_are_refused(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    mon = trial.actor("mon", "monitor")
    with pytest.raises(Invalid):
        queries.raise_query(db, mon, "revw", record.id, "/nosuch", "?")
    with pytest.raises(Invalid):
        queries.raise_query(db, mon, "revw", record.id, "/sbp", "   ")
    query = queries.raise_query(db, mon, "revw", record.id, "sbp", "Check")
    assert query.field == "/sbp"
    with pytest.raises(Conflict):
        queries.reopen_query(db, mon, "revw", query.id, "not closed")
    queries.close_query(db, mon, "revw", query.id, "raised in error")
    with pytest.raises(Conflict):
        queries.answer_query(db, trial.actor("nurse"), "revw", query.id, "late")
    with pytest.raises(NotFound):
        queries.answer_query(db, trial.actor("nurse"), "revw", query.id + 999, "no such")


def test_a_failing_soft_check_raises_an_automatic_query_once_and_closes_it_when_fixed(trial, db):
    record = trial.save("01-001", "baseline", "vitals", {"sbp": 190, "assessed": "2026-11-02"})
    auto = queries.queries_of_record(db, record)
    assert [(q.field, q.origin, q.state) for q in auto] == [("/sbp", "auto", "open")]
    assert auto[0].messages[0].author_name == "edit check"
    assert auto[0].messages[0].text == "Very high blood pressure: please confirm."
    trial.save("01-001", "baseline", "vitals", {"sbp": 195, "assessed": "2026-11-02"}, reason="typo")
    assert len(queries.queries_of_record(db, record)) == 1
    trial.save("01-001", "baseline", "vitals", {"sbp": 150, "assessed": "2026-11-02"}, reason="typo")
    (query,) = queries.queries_of_record(db, record)
    assert query.state == "closed" and query.messages[-1].kind == "close"


def test_counts_and_list_filters(trial, db):
    own = trial.save("01-001", "baseline", "vitals", {"sbp": 190, "assessed": "2026-11-02"})
    other = trial.save("02-001", "baseline", "vitals", {"sbp": 120, "assessed": "2026-11-02"})
    mon = trial.actor("mon", "monitor")
    manual = queries.raise_query(db, mon, "revw", other.id, "/sbp", "Check")
    queries.answer_query(db, trial.actor("nurse"), "revw", manual.id, "ok")
    from ecrf.studies import get_study
    study = get_study(db, "revw")
    counts = queries.counts_by_subject(db, [own.subject_id, other.subject_id])
    assert counts == {own.subject_id: {"open": 1, "answered": 0}, other.subject_id: {"open": 0, "answered": 1}}
    assert [r.subject for r in queries.list_queries(db, study)] == ["02-001", "01-001"]
    assert [r.subject for r in queries.list_queries(db, study, origin="auto")] == ["01-001"]
    assert [r.subject for r in queries.list_queries(db, study, state="answered")] == ["02-001"]
    site01 = {own.subject.site_id}
    assert [r.subject for r in queries.list_queries(db, study, site01)] == ["01-001"]
    assert queries.list_queries(db, study, form="labs") == []
