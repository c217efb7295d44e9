"""save_form: hidden fields cleared (audited), calculations stored, missing-data flags, reasons for
change, stale versions, soft checks; every save explained by the audit log."""
import dataclasses

import pytest
from sqlalchemy import func, select

from audit import Action, audit_event, head
from ecrf.audit_check import verify_database
from ecrf.capture.service import StaleVersion
from ecrf.errors import Conflict, Invalid
from ecrf.models import FormRecord

BASE = {"visdat": "2024-03-15", "smoker": "N"}
FLAG = {"flag": "not_done", "reason": "scale broken"}


def _events(db, record_id):
    return [(r.action, r.field, r.old_value, r.new_value, r.reason) for r in db.execute(
        select(audit_event).where(audit_event.c.record == record_id).order_by(audit_event.c.seq))]


def _field_events(db, record_id, field):
    return [e for e in _events(db, record_id) if e[1] == field]


def test_a_value_left_in_a_field_that_becomes_hidden_is_cleared_and_audited(ks, db):
    first = ks.save(dict(BASE, smoker="Y", packs=2))
    assert first.record.data["packs"] == 2
    second = ks.save(dict(BASE, smoker="N", packs=2), reason="Data entry error")
    assert "packs" not in second.record.data
    assert ("/packs", 2, None) in second.changes
    assert _field_events(db, second.record.id, "/packs")[-1] == ("clear", "/packs", "2", None, "Data entry error")
    assert verify_database(db).ok


def test_a_new_value_for_a_hidden_field_is_refused_and_nothing_is_stored(ks, db):
    before = head(db.connection())
    with pytest.raises(Invalid) as refused:
        ks.save(dict(BASE, smoker="N", packs=3))
    assert refused.value.errors == [("/packs", "this field does not apply to the answers given; leave it empty")]
    assert head(db.connection()) == before
    assert db.scalar(select(func.count()).select_from(FormRecord)) == 0


def test_calculations_are_computed_stored_and_audited_whatever_was_sent(ks, db):
    saved = ks.save(dict(BASE, weight=70, height=175, bmi=99, tubes=[{"tube": "EDTA", "volume": 1.5},
                                                                    {"tube": "serum", "volume": 2}]))
    assert saved.record.data["bmi"] == 22.9 and saved.record.data["total"] == 3.5
    assert _field_events(db, saved.record.id, "/bmi") == [("create", "/bmi", None, "22.9", None)]
    again = ks.save(dict(BASE, weight=80, height=175, tubes=[{"tube": "EDTA", "volume": 1.5}]),
                    reason="New information received")
    assert again.record.data["bmi"] == 26.1 and again.record.data["total"] == 1.5
    assert _field_events(db, saved.record.id, "/bmi")[-1] == (
        "update", "/bmi", "22.9", "26.1", "New information received")
    # a calculation with nothing to compute from removes the field
    cleared = ks.save(dict(BASE), reason="Data entry error")
    assert "bmi" not in cleared.record.data and "total" not in cleared.record.data
    assert verify_database(db).ok


def test_drafts_may_leave_required_fields_empty_complete_may_not(ks, db):
    draft = ks.save({"weight": 70})
    assert draft.record.status == "draft"
    with pytest.raises(Invalid) as refused:
        ks.save({"weight": 70}, complete=True)
    assert {p for p, _ in refused.value.errors} == {"/visdat", "/smoker"}
    with pytest.raises(Invalid) as then:
        ks.save(dict(BASE, weight=70, smoker="Y"), complete=True)
    assert then.value.errors == [("/packs", "this field is required")]
    done = ks.save(dict(BASE, weight=70), complete=True)
    assert done.record.status == "complete"
    statuses = [e[3] for e in _events(db, done.record.id) if e[0] == "status_change"]
    assert statuses == ['"draft"', '"complete"']


def test_missing_flags_are_stored_apart_audited_and_superseded_by_a_value(ks, db):
    saved = ks.save(dict(BASE), missing={"/weight": FLAG})
    assert saved.record.missing == {"/weight": FLAG} and "weight" not in saved.record.data
    assert saved.flag_changes == [("/weight", None, FLAG)]
    event = _field_events(db, saved.record.id, "/weight")[-1]
    assert event[0] == Action.MISSING and event[2] is None
    # kept when the next save says nothing about flags
    kept = ks.save(dict(BASE, height=170))
    assert kept.record.missing == {"/weight": FLAG}
    # a value supersedes the flag: that changes saved data, so it needs a reason
    with pytest.raises(Invalid) as no_reason:
        ks.save(dict(BASE, height=170, weight=72))
    assert no_reason.value.errors == [("/reason", "give a reason for the change")]
    valued = ks.save(dict(BASE, height=170, weight=72), reason="Scale repaired")
    assert valued.record.missing == {} and valued.record.data["weight"] == 72
    assert [e[0] for e in _field_events(db, saved.record.id, "/weight")][-2:] == ["missing_flag", "create"]
    assert verify_database(db).ok


def test_a_flag_and_a_value_together_are_refused(ks):
    with pytest.raises(Invalid) as refused:
        ks.save(dict(BASE, weight=70), missing={"/weight": FLAG})
    assert refused.value.errors == [("/weight", "give a value or mark the field as missing, not both")]


def test_a_flag_on_a_hidden_field_is_refused_unless_it_was_stored(form_def, make_study, db, actor):
    from ecrf.capture.service import enrol_subject, save_form

    schema = {"type": "object", "properties": {
        "done": {"enum": ["Y", "N"]},
        "value": {"type": "number", "x-ecrf": {"missing": ["not_done"],
                                               "show_if": {"properties": {"done": {"const": "Y"}}, "required": ["done"]}}}}}
    make_study({"f": schema}, study_id="h")
    subject = enrol_subject(db, actor, "h", "01").key
    with pytest.raises(Invalid):
        save_form(db, actor, "h", subject, "v1", "f", {"done": "N"}, missing={"/value": FLAG})
    stored = save_form(db, actor, "h", subject, "v1", "f", {"done": "Y"}, missing={"/value": FLAG})
    hidden = save_form(db, actor, "h", subject, "v1", "f", {"done": "N"}, missing={"/value": FLAG},
                       reason="Answer to a query")
    assert stored.record.missing == {} and hidden.flag_changes == [("/value", FLAG, None)]


def test_editing_saved_data_needs_a_reason_which_goes_to_the_audit_log(ks, db):
    first = ks.save(dict(BASE, weight=70))
    added = ks.save(dict(BASE, weight=70, height=180))  # adding to a draft changes nothing saved
    assert set(added.changes) == {("/height", None, 180), ("/bmi", None, 21.6)}
    with pytest.raises(Invalid) as refused:
        ks.save(dict(BASE, weight=71, height=180))
    assert refused.value.errors == [("/reason", "give a reason for the change")]
    ks.save(dict(BASE, weight=71, height=180), reason="  Transcription error from source: typo  ")
    assert _field_events(db, first.record.id, "/weight")[-1][4] == "Transcription error from source: typo"
    with pytest.raises(Invalid) as too_long:
        ks.save(dict(BASE, weight=72, height=180), reason="x" * 2001)
    assert too_long.value.errors[0][0] == "/reason"


def test_a_save_based_on_an_old_version_is_refused_with_the_current_values(ks):
    first = ks.save(dict(BASE, weight=70))
    version = first.record.version
    ks.save(dict(BASE, weight=75), reason="Data entry error", expected_version=version)
    with pytest.raises(StaleVersion) as stale:
        ks.save(dict(BASE, weight=80), reason="Data entry error", expected_version=version)
    assert isinstance(stale.value, Conflict)  # the API answers 409 for any Conflict
    assert stale.value.version == version + 1
    assert stale.value.data["weight"] == 75 and stale.value.status == "draft"


def test_a_new_record_created_meanwhile_is_a_conflict_too(ks):
    ks.save(dict(BASE, weight=70))
    with pytest.raises(StaleVersion):
        ks.save(dict(BASE, weight=71), expected_version=0, reason="x")


def test_soft_checks_save_the_data_and_raise_a_query_on_the_field(ks, db):
    from ecrf.review.queries import queries_of_record

    saved = ks.save(dict(BASE, weight=160))
    assert saved.record.data["weight"] == 160
    assert saved.checks == {"/weight": ["Weight above 150 kg: please confirm."]}
    open_ = [(q.field, q.state, q.origin) for q in queries_of_record(db, saved.record)]
    assert open_ == [("/weight", "open", "auto")]
    fixed = ks.save(dict(BASE, weight=140), reason="Data entry error")
    assert fixed.checks == {}
    assert [q.state for q in queries_of_record(db, fixed.record)] == ["closed"]


def test_rows_added_and_removed_replay_exactly(ks, db):
    ks.save(dict(BASE, tubes=[{"tube": "EDTA", "volume": 1}, {"tube": "serum"}]))
    ks.save(dict(BASE, tubes=[{"tube": "serum", "volume": 2}]), reason="Data entry error")
    ks.save(dict(BASE, tubes=[{"tube": "serum", "volume": 3}, {"tube": "EDTA"}, {"tube": "EDTA"}]),
            reason="Data entry error")
    assert verify_database(db).ok


def test_log_forms_number_their_entries(ks):
    one = ks.save({"term": "Headache", "ongoing": "Y"}, visit="", form="ev")
    two = ks.save({"term": "Nausea"}, visit="", form="ev")
    assert (one.record.seq, two.record.seq) == (1, 2)
    edited = ks.save({"term": "Nausea", "ongoing": "N", "ended": "2024-03-20"}, visit="", form="ev", seq=2)
    assert edited.record.seq == 2 and edited.record.data["ended"] == "2024-03-20"


def test_invalid_data_stores_nothing(ks, db):
    ks.save(dict(BASE, weight=70))
    record = db.scalar(select(FormRecord))
    version, before = record.version, head(db.connection())
    with pytest.raises(Invalid):
        ks.save(dict(BASE, weight="heavy", extra="x"), reason="x")
    db.expire_all()
    assert db.scalar(select(FormRecord)).version == version and head(db.connection()) == before


def test_null_is_an_absent_value_and_true_is_not_one(ks, make_study, db, actor):
    from ecrf.capture.service import diff_documents, enrol_subject, save_form

    first = ks.save(dict(BASE, weight=70, tubes=[{"tube": "EDTA", "volume": None}]))
    assert first.record.data["tubes"] == [{"tube": "EDTA"}]
    cleared = ks.save(dict(BASE, weight=None), reason="Data entry error")
    assert "weight" not in cleared.record.data
    assert diff_documents({"a": True, "b": 1.0}, {"a": 1, "b": 1}) == [("/a", True, 1)]
    schema = {"type": "object", "properties": {"v": {"type": ["boolean", "integer"]}}}
    make_study({"f": schema}, study_id="b")
    subject = enrol_subject(db, actor, "b", "01").key
    save_form(db, actor, "b", subject, "v1", "f", {"v": True})
    changed = save_form(db, actor, "b", subject, "v1", "f", {"v": 1}, reason="Data entry error")
    assert changed.changes == [("/v", True, 1)]
    assert verify_database(db).ok


def test_two_writers_creating_the_same_record_get_a_conflict_not_a_500(ks, db, actor, monkeypatch):
    """On PostgreSQL two transactions can both read "no record yet"; the unique constraint then
    refuses the second insert, and the service answers with a conflict, everything rolled back."""
    from ecrf.capture import service

    service.save_form(db, actor, "t", "01-001", "v1", "ks", {})
    events = db.scalar(select(func.count()).select_from(audit_event))
    real = service._load_target
    monkeypatch.setattr(service, "_load_target",  # as if the record were not there yet
                        lambda *args: dataclasses.replace(real(*args), record=None))
    with pytest.raises(Conflict, match="at the same moment"):
        service.save_form(db, actor, "t", "01-001", "v1", "ks", {})
    assert db.scalar(select(func.count()).select_from(audit_event)) == events
