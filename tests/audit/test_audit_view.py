"""Reading the log (ecrf.audit_view): filters, paging, who sees what, field history, a record as it
was, and the export."""
import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import select

from audit import Action, append, audit_event
from audit.verify import COLUMNS
from audit.canonical import hash_values
from ecrf import audit_view
from ecrf.audit_view import AuditFilters, AuditScope
from ecrf.errors import Invalid, NotFound, PermissionDenied
from ecrf.studies import add_site, get_study

XSS = '<script>alert("x")</script>'


@pytest.fixture
def logged(trial, db, actor, load_study):
    """Two sites' worth of history in audit-trial, a randomization, and a second study whose subject
    has the same id (its events must never show in audit-trial)."""
    trial.enrol("01-001")
    trial.enrol("02-001", site="02")
    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "comment": XSS})
    trial.save("01-001", "baseline", "vitals", {"sbp": 125, "comment": "=HYPERLINK(\"http://x\")"},
               reason="typo")
    trial.save("01-001", "baseline", "samples", {"tubes": [{"tube": "EDTA"}]})
    trial.save("01-001", "baseline", "samples", {"tubes": [{"tube": "serum"}, {"tube": "EDTA"}]},
               reason="order")
    trial.save("01-001", "baseline", "samples", {"tubes": [{"tube": "EDTA"}, {"tube": "EDTA"}]},
               reason="relabelled")
    trial.save("02-001", "baseline", "vitals", {"sbp": 140, "weight": -5.5})
    trial.save("01-001", "", "ae", {"term": "@SUM(A1)", "grade": 1})
    # What the randomization service will write (it does not exist yet).
    append(db.connection(), actor.event(Action.RANDOMIZE, study=trial.key, site="01", subject="01-001",
                                        field="/arm", new="drug", reason="allocated to drug"))
    load_study("demo")
    add_site(db, actor, "demo", "01", "Odense")
    from ecrf.capture.service import enrol_subject, save_form
    enrol_subject(db, actor, "demo", "01", "01-001")
    save_form(db, actor, "demo", "01-001", "baseline", "vitals", {"sbp": 99})
    db.commit()
    return trial


@pytest.fixture
def scope(db, make_user):
    """Factory: the AuditScope of a new user holding ``role`` in audit-trial (at ``sites``)."""
    made = []

    def make(role, sites=()):
        user = make_user(f"{role}{len(made)}", role, "audit-trial", sites=sites)
        made.append(user)
        return audit_view.scope_for(db, user, get_study(db, "audit-trial"))

    return make


def _all(db, scope, filters=AuditFilters()):
    return audit_view.query_events(db, scope, filters, limit=10_000).events


def _record(db, subject, form, visit="baseline"):
    return db.execute(select(audit_event.c.record).where(
        audit_event.c.study == "audit-trial", audit_event.c.subject == subject,
        audit_event.c.form == form, audit_event.c.visit == visit)).scalars().first()


# --- who sees what ---------------------------------------------------------------------------------

def test_monitor_sees_every_site_but_no_other_study(db, logged, scope):
    events = _all(db, scope("monitor"))
    assert {e.study for e in events} == {"audit-trial"}
    assert {e.site for e in events} >= {"01", "02", None}
    assert [e.seq for e in events] == sorted((e.seq for e in events), reverse=True)
    demo = db.execute(select(audit_event.c.seq).where(audit_event.c.study == "demo")).scalars().all()
    assert demo and not set(demo) & {e.seq for e in events}


def test_site_staff_see_only_their_sites(db, logged, scope):
    events = _all(db, scope("site_staff", sites=["01"]))
    assert events and {e.site for e in events} == {"01"}
    assert "02-001" not in {e.subject for e in events}
    both = _all(db, scope("investigator", sites=["01", "02"]))
    assert {e.site for e in both} == {"01", "02"}


@pytest.mark.parametrize("role", ["sponsor", "pharmacist"])
def test_sponsors_and_pharmacists_see_none_of_it(db, logged, make_user, role):
    user = make_user("outsider", role, "audit-trial")
    with pytest.raises(PermissionDenied):
        audit_view.scope_for(db, user, get_study(db, "audit-trial"))


def test_a_user_without_a_role_in_the_study_is_told_it_does_not_exist(db, logged, make_user):
    user = make_user("stranger", "monitor", "demo")
    with pytest.raises(NotFound):
        audit_view.scope_for(db, user, get_study(db, "audit-trial"))


def test_open_label_study_shows_allocation_values(db, logged, actor, make_user):
    """Blinding is decided by ecrf.randomization.can_see_arm: demo has no masking."""
    append(db.connection(), actor.event(Action.RANDOMIZE, study="demo", site="01", subject="01-001",
                                        field="/arm", new="drug"))
    monitor = make_user("demo-monitor", "monitor", "demo")
    scope = audit_view.scope_for(db, monitor, get_study(db, "demo"))
    assert scope.arm_visible
    assert [e.new for e in _all(db, scope, AuditFilters(action="randomize"))] == ["drug"]


def test_allocation_values_are_blinded(db, logged, scope):
    randomized = _all(db, scope("data_manager"), AuditFilters(action="randomize"))
    assert len(randomized) == 1
    event = randomized[0]
    assert event.blinded and event.new == audit_view.BLINDED and event.reason == audit_view.BLINDED
    unblinded = _all(db, AuditScope("audit-trial", arm_visible=True), AuditFilters(action="randomize"))
    assert unblinded[0].new == "drug" and unblinded[0].reason == "allocated to drug"


# --- filters and paging ----------------------------------------------------------------------------

@pytest.mark.parametrize(("filters", "check"), [
    (AuditFilters(site="02"), lambda e: e.site == "02"),
    (AuditFilters(subject="01-001"), lambda e: e.subject == "01-001"),
    (AuditFilters(visit="baseline"), lambda e: e.visit == "baseline"),
    (AuditFilters(form="samples"), lambda e: e.form == "samples"),
    (AuditFilters(field="/tubes"), lambda e: (e.field or "").split("/")[:2] == ["", "tubes"]),
    (AuditFilters(action="update"), lambda e: e.action == "update"),
    (AuditFilters(user="cli:nobody"), lambda e: False),
])
def test_filters(db, logged, filters, check):
    everything = _all(db, AuditScope("audit-trial"))
    matching = _all(db, AuditScope("audit-trial"), filters)
    assert [e.seq for e in matching] == [e.seq for e in everything if check(e)]


def test_field_filter_does_not_treat_underscore_as_a_wildcard(db, logged):
    assert _all(db, AuditScope("audit-trial"), AuditFilters(field="/s_p")) == []


def test_user_and_date_filters(db, logged, actor):
    everything = _all(db, AuditScope("audit-trial"))
    assert _all(db, AuditScope("audit-trial"), AuditFilters(user=actor.name)) == everything
    today = dt.datetime.now(dt.timezone.utc).date()
    day = dt.timedelta(days=1)
    assert _all(db, AuditScope("audit-trial"), AuditFilters(since=str(today), until=str(today))) == everything
    assert _all(db, AuditScope("audit-trial"), AuditFilters(until=str(today - day))) == []
    assert _all(db, AuditScope("audit-trial"), AuditFilters(since=str(today + day))) == []
    middle = everything[len(everything) // 2]
    newer = _all(db, AuditScope("audit-trial"), AuditFilters(since=middle.ts))
    assert newer and all(e.ts >= middle.ts for e in newer) and middle in newer


def test_filters_from_request_arguments(db):
    filters = AuditFilters.from_mapping({"subject": " 01-001 ", "site": "", "record": "7",
                                         "since": "2026-11-23", "until": "2026-11-23T10:00:00 01:00"})
    assert filters.params() == {"subject": "01-001", "record": 7, "since": "2026-11-23",
                                "until": "2026-11-23T10:00:00 01:00"}
    assert filters.bounds() == ("2026-11-23T00:00:00.000000Z", "2026-11-23T09:00:00.000000Z")
    for bad in ({"record": "x"}, {"action": "nonsense"}, {"since": "yesterday"}, {"until": "2026-13-01"}):
        with pytest.raises(Invalid):
            AuditFilters.from_mapping(bad)


def test_keyset_paging_walks_every_event_once(db, logged):
    scope = AuditScope("audit-trial")
    everything = [e.seq for e in _all(db, scope)]
    seen, page = [], audit_view.query_events(db, scope, limit=4)
    assert page.newer is None
    pages = [page]
    while page.older is not None:
        page = audit_view.query_events(db, scope, before=page.older, limit=4)
        pages.append(page)
    seen = [e.seq for p in pages for e in p.events]
    assert seen == everything and len(pages) == -(-len(everything) // 4)
    back = audit_view.query_events(db, scope, after=pages[1].newer, limit=4)
    assert back.events == pages[0].events and back.newer is None and back.older == pages[0].older


# --- one field, one record --------------------------------------------------------------------------

def test_field_history_of_a_simple_field(db, logged, scope):
    record = _record(db, "01-001", "vitals")
    history = audit_view.field_history(db, scope("monitor"), record, "/sbp")
    assert [(c.event.action, c.before, c.after, c.event.reason) for c in history.changes] == [
        ("create", None, "120", None), ("update", "120", "125", "typo")]
    assert (history.subject, history.site, history.visit, history.form) == ("01-001", "01", "baseline", "vitals")


def test_field_history_inside_a_repeating_group(db, logged):
    record = _record(db, "01-001", "samples")
    history = audit_view.field_history(db, AuditScope("audit-trial"), record, "/tubes/0/tube")
    # Created with the group, replaced when a row was added (whole group), edited in place.
    assert [(c.event.field, c.before, c.after) for c in history.changes] == [
        ("/tubes", None, "EDTA"), ("/tubes", "EDTA", "serum"), ("/tubes/0/tube", "serum", "EDTA")]
    second = audit_view.field_history(db, AuditScope("audit-trial"), record, "/tubes/1/tube")
    assert [(c.before, c.after) for c in second.changes] == [(None, "EDTA")]


def test_field_history_is_refused_outside_the_viewers_sites_and_study(db, logged, scope):
    other_site = _record(db, "02-001", "vitals")
    with pytest.raises(NotFound):
        audit_view.field_history(db, scope("site_staff", sites=["01"]), other_site, "/sbp")
    demo_record = db.execute(select(audit_event.c.record).where(
        audit_event.c.study == "demo", audit_event.c.record.is_not(None))).scalars().first()
    with pytest.raises(NotFound):
        audit_view.field_history(db, AuditScope("audit-trial"), demo_record, "/sbp")
    with pytest.raises(Invalid):
        audit_view.field_history(db, AuditScope("audit-trial"), other_site, "sbp")


def test_record_as_of_any_past_moment(db, logged, events):
    record = _record(db, "01-001", "vitals")
    created, updated = (e for e in events(record=record, action="status_change") + events(
        record=record, field="/sbp", action="update"))
    at_creation = audit_view.record_as_of(db, record, created.ts)
    assert at_creation.exists and at_creation.data == {"sbp": 120, "comment": XSS}
    assert at_creation.status == "draft" and at_creation.last_seq == created.seq
    now = audit_view.record_as_of(db, record)
    assert now.data == {"sbp": 125, "comment": '=HYPERLINK("http://x")'} and now.last_seq >= updated.seq
    before = audit_view.parse_moment(created.ts) - dt.timedelta(microseconds=1)
    assert not audit_view.record_as_of(db, record, before).exists
    offset = audit_view.parse_moment(created.ts).astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert audit_view.record_as_of(db, record, offset.isoformat()).data == at_creation.data
    with pytest.raises(NotFound):
        audit_view.record_as_of(db, 10**9, None)


def test_record_as_of_respects_the_scope(db, logged, scope):
    with pytest.raises(NotFound):
        audit_view.record_as_of(db, _record(db, "02-001", "vitals"), None,
                                scope=scope("site_staff", sites=["01"]))


# --- export -------------------------------------------------------------------------------------------

def test_csv_export_is_safe_in_a_spreadsheet_and_audited(db, logged, actor, events):
    out = io.BytesIO()
    result = audit_view.export_events(db, actor, AuditScope("audit-trial"), "csv", out)
    raw = out.getvalue()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == list(COLUMNS) and len(rows) - 1 == result.events
    cells = [cell for row in rows[1:] for cell in row]
    assert "'=HYPERLINK(\"http://x\")" in cells and "'@SUM(A1)" in cells and "'-5.5" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert XSS in cells
    assert audit_view.BLINDED in cells and "drug" not in cells
    export = events()[-1]
    assert export.action == Action.EXPORT and export.study == "audit-trial"
    assert json.loads(export.new_value)["events"] == result.events
    assert result.through_seq == [e.seq for e in events(study="audit-trial")][-2]


def test_jsonl_export_keeps_what_was_stored(db, logged, actor):
    out = io.BytesIO()
    result = audit_view.export_events(db, actor, AuditScope("audit-trial", arm_visible=True), "jsonl", out,
                                      AuditFilters(subject="01-001"))
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert len(lines) == result.events and {line["subject"] for line in lines} == {"01-001"}
    for line in lines:  # unmasked lines can be re-verified with the documented hash
        assert hash_values([line[c] for c in COLUMNS[:-1]]) == line["hash"]


def test_export_refuses_unknown_formats(db, logged, actor):
    with pytest.raises(Invalid):
        audit_view.export_events(db, actor, AuditScope("audit-trial"), "xlsx", io.BytesIO())


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("a=b", "a=b"), ("", ""),
    ("'=1", "''=1"), ("''-1", "'''-1"), ("'abc", "'abc"), ("'", "'"),
])
def test_neutralise(text, expected):
    assert audit_view.neutralise(text) == expected
    assert audit_view.unneutralise(expected) == text  # a cell read back is the text written
