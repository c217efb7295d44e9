"""``ecrf import data``: rows of a CSV file through the capture service, all or none, attributed to
the importing user on the ``import`` channel; dry runs write nothing; a second import changes nothing."""
import types

import pytest
from sqlalchemy import func, select

from audit import audit_event
from ecrf.exchange.import_data import ImportRefused, import_data
from ecrf.models import DataQuery as Query
from ecrf.models import FormRecord, Subject

PASSWORD = "import password 1"
VS = {"type": "object", "title": "Vital signs",
      "properties": {
          "assessed": {"type": "string", "format": "date", "title": "Assessed"},
          "sex": {"enum": ["F", "M"], "x-ecrf": {"widget": "radio", "labels": {"F": "Female", "M": "Male"}}},
          "pregnant": {"type": "boolean", "x-ecrf": {"show_if": {"properties": {"sex": {"const": "F"}},
                                                                  "required": ["sex"]}}},
          "sbp": {"type": "integer", "minimum": 50, "maximum": 260,
                  "x-ecrf": {"warnings": [{"expect": "sbp < 180", "message": "Very high: confirm."}]}},
          "wt": {"type": "number"}, "ht": {"type": "number"},
          "bmi": {"type": "number", "readOnly": True,
                  "x-ecrf": {"calculate": "round(wt / ((ht / 100) * (ht / 100)), 1)"}},
          "symptoms": {"type": "array", "uniqueItems": True, "items": {"enum": ["cough", "fever"]},
                       "x-ecrf": {"widget": "checkboxes"}},
          "hba1c": {"type": "number", "x-ecrf": {"missing": ["not_done", "unknown"]}}},
      "required": ["assessed"]}
AE = {"type": "object", "title": "Events",
      "properties": {"term": {"type": "string", "maxLength": 200}, "grade": {"enum": [1, 2, 3]}},
      "required": ["term"]}
HEADER = "subject,site,visit,visit_date,record,form_version,status,assessed,sex,sex_label,pregnant,sbp,wt,ht,bmi,symptoms,hba1c,hba1c_missing"


@pytest.fixture
def study(db, tmp_path, write_study, load_study, make_user):
    load_study(write_study(tmp_path / "defs", {"vs": VS, "ae": AE}, study_id="imp", log_forms=("ae",)))
    users = types.SimpleNamespace(
        dm=make_user("dm1", "data_manager", "imp", password=PASSWORD),
        dm2=make_user("dm2", "data_manager", "imp", sites=["02"], password=PASSWORD),
        staff=make_user("staff1", "site_staff", "imp", password=PASSWORD))

    def run(lines, form="vs", user=None, header=HEADER, **kwargs):
        path = tmp_path / "data.csv"
        path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        return import_data(db, user or users.dm, "imp", form, path, **kwargs)

    return types.SimpleNamespace(users=users, run=run, path=tmp_path / "data.csv")


ROWS = ["01-001,01,v1,2024-03-01,,vs@x,complete,2024-03-01,F,Female,true,190,70,175,,cough;fever,,",
        "01-002,01,v1,,,,draft,2024-03-02,M,,,120,80,180,99,,,not_done: no sample"]


def counts(db):
    return (db.scalar(select(func.count()).select_from(FormRecord)),
            db.scalar(select(func.count()).select_from(audit_event)))


def test_rows_go_through_the_capture_service_as_the_importing_user(db, study):
    report = study.run(ROWS)
    assert [(r.subject, r.outcome) for r in report.rows] == [("01-001", "created"), ("01-002", "created")]
    one = db.scalar(select(FormRecord).join(Subject).where(Subject.key == "01-001"))
    assert one.data == {"assessed": "2024-03-01", "sex": "F", "pregnant": True, "sbp": 190, "wt": 70,
                        "ht": 175, "bmi": 22.9, "symptoms": ["cough", "fever"]}
    assert one.status == "complete"
    two = db.scalar(select(FormRecord).join(Subject).where(Subject.key == "01-002"))
    assert two.data["bmi"] == 24.7  # calculated, whatever the file said
    assert two.missing == {"/hba1c": {"flag": "not_done", "reason": "no sample"}}
    events = db.execute(select(audit_event).where(audit_event.c.subject == "01-001")).mappings().all()
    assert {(e["actor_name"], e["actor_role"], e["channel"]) for e in events} == {("dm1", "data_manager", "import")}
    assert {"enrol", "visit_date"} <= {e["action"] for e in events}
    [query] = db.scalars(select(Query)).all()  # the soft check on sbp raised its query
    assert query.field == "/sbp"


def test_a_dry_run_reports_the_differences_and_writes_nothing(db, study):
    before = counts(db)
    report = study.run(ROWS, dry_run=True)
    assert report.dry_run and report.count("created") == 2
    assert ("/sbp", None, 190) in report.rows[0].changes
    assert ("/hba1c (missing)", None, {"flag": "not_done", "reason": "no sample"}) in report.rows[1].changes
    assert counts(db) == before
    assert db.scalar(select(func.count()).select_from(Subject)) == 0


def test_importing_the_same_file_twice_changes_nothing_the_second_time(db, study):
    study.run(ROWS)
    before = counts(db)
    report = study.run(ROWS)
    assert [r.outcome for r in report.rows] == ["unchanged", "unchanged"]
    assert counts(db) == before


def test_changing_saved_data_needs_a_reason_which_goes_to_the_audit_log(db, study):
    study.run(ROWS)
    changed = [ROWS[0].replace(",190,", ",150,")]
    with pytest.raises(ImportRefused) as exc:
        study.run(changed)
    assert exc.value.lines() == ["row 2: /reason: give a reason for the change"]
    report = study.run(changed, reason="Transcription error corrected")
    assert report.rows[0].outcome == "changed" and report.rows[0].changes == [("/sbp", 190, 150)]
    event = db.execute(select(audit_event).where(audit_event.c.field == "/sbp", audit_event.c.action == "update")
                       ).mappings().one()
    assert (event["reason"], event["channel"]) == ("Transcription error corrected", "import")
    assert db.scalars(select(Query)).one().state != "open"  # the passing check closed its query


def test_one_bad_row_refuses_the_file_with_every_problem_listed(db, study):
    before = counts(db)
    bad = [ROWS[0],
           "01-003,01,v1,,,,,2024-02-30,M,,,abc,,,,,,",
           "01-004,01,v1,,,,,2024-03-01,M,,true,120,,,,flu,,",
           "01-005,01,v1,,,,,2024-03-01,X,,,,,,,,,",
           "01-006,,v1,,,,,2024-03-01,,,,,,,,,,",
           "01-007,01,v9,,,,,,,,,,,,,,,"]
    with pytest.raises(ImportRefused) as exc:
        study.run(bad)
    assert exc.value.lines() == [
        "row 3: /sbp: 'abc' is not a whole number",
        "row 4: /symptoms: 'flu' is not one of the codes: cough, fever",
        "row 5: /sex: 'X' is not one of the codes: F, M",
        "row 6: /site: subject '01-006' is new: give its site",
        "row 7: /: no visit 'v9' for subject '01-007'",
    ]
    hidden = ["01-004,01,v1,,,,,2024-03-01,M,,true,120,,,,,,", "01-003,01,v1,,,,,2024-02-30,M,,,,,,,,,"]
    with pytest.raises(ImportRefused) as exc:
        study.run(hidden)
    assert exc.value.lines() == [
        "row 2: /pregnant: this field does not apply to the answers given; leave it empty",
        "row 3: /assessed: is not a valid date"]
    assert counts(db) == before and db.scalar(select(func.count()).select_from(Subject)) == 0


def test_unknown_columns_are_refused_before_any_row(study):
    with pytest.raises(ImportRefused) as exc:
        study.run(["01-001,v1,1"], header="subject,visit,weight_kg")
    assert exc.value.lines() == ["row 1: /weight_kg: 'weight_kg' is not a column of form 'vs'"]


def test_log_forms_use_the_record_number(db, study):
    header = "subject,site,visit,record,term,grade"
    first = study.run(["01-001,01,,,Headache,1", "01-001,01,,,Nausea,2"], form="ae", header=header)
    assert [(r.record, r.outcome) for r in first.rows] == [(1, "created"), (2, "created")]
    rows = ["01-001,01,,1,Headache,1", "01-001,01,,2,Nausea,2", "01-001,01,,3,Rash,1"]
    report = study.run(rows, form="ae", header=header)
    assert [(r.record, r.outcome) for r in report.rows] == [(1, "unchanged"), (2, "unchanged"), (3, "created")]
    with pytest.raises(ImportRefused) as exc:
        study.run(["01-001,01,,9,Fever,1", "01-001,01,v1,,Cough,1"], form="ae", header=header)
    assert exc.value.lines() == ["row 2: /record: entry 9 does not exist; the next new entry is 4",
                                 "row 3: /visit: 'ae' is a log form: leave the visit empty"]


def test_the_user_needs_data_import_at_each_subjects_site(db, study):
    with pytest.raises(ImportRefused) as exc:
        study.run(ROWS[:1], user=study.users.dm2)
    assert exc.value.lines() == ["row 2: /: not found"]
    with pytest.raises(ImportRefused) as exc:
        study.run(ROWS[:1], user=study.users.staff)
    assert exc.value.lines() == ["row 2: /: your role may not do this (data.import)"]


def test_encodings(db, study):
    study.path.write_bytes(("\ufeff" + HEADER + "\n" + ROWS[0] + "\n").encode("utf-8"))
    assert import_data(db, study.users.dm, "imp", "vs", study.path).count("created") == 1
    study.path.write_bytes((HEADER + "\n" + ROWS[1].replace("no sample", "prøve tabt") + "\n").encode("latin-1"))
    with pytest.raises(Exception, match="not UTF-8 .*--encoding"):
        import_data(db, study.users.dm, "imp", "vs", study.path)
    report = import_data(db, study.users.dm, "imp", "vs", study.path, encoding="latin-1")
    assert report.count("created") == 1


def test_the_command_imports_as_a_user_and_lists_problems(cli, db, study):
    study.path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    args = ("import", "data", str(study.path), "--study", "imp", "--form", "vs", "--as", "dm1", "--password-stdin")
    dry = cli(*args, "--dry-run", input=PASSWORD + "\n")
    assert dry.exit_code == 0, dry.output
    assert "row 2: created 01-001 v1" in dry.output and "    /sbp: (empty) -> 190" in dry.output
    assert "2 row(s): 2 created, 0 changed, 0 unchanged (would be written: dry run" in dry.output
    assert db.scalar(select(func.count()).select_from(FormRecord)) == 0
    done = cli(*args, input=PASSWORD + "\n")
    assert done.exit_code == 0 and "2 created" in done.output
    again = cli(*args, input=PASSWORD + "\n")
    assert "0 created, 0 changed, 2 unchanged" in again.output
    study.path.write_text(HEADER + "\n" + ROWS[0].replace(",190,", ",x,") + "\n", encoding="utf-8")
    bad = cli(*args, input=PASSWORD + "\n")
    assert bad.exit_code == 1 and "row 2: /sbp: 'x' is not a whole number" in bad.output
    assert "1 problem(s); nothing was imported" in bad.output
    no_user = cli("import", "data", str(study.path), "--study", "imp", "--form", "vs")
    assert no_user.exit_code == 2 and "--as" in no_user.output


def test_a_subject_enrolled_by_a_refused_row_is_not_taken_as_existing(db, study):
    rows = ["01-009,01,v1,,,,,2024-03-01,M,,true,120,,,,,,",   # enrols, then the save is refused
            "01-009,01,v1,,,,,2024-03-01,M,,,130,,,,,,"]       # the same subject, valid on its own
    with pytest.raises(ImportRefused) as exc:
        study.run(rows)
    assert exc.value.lines() == [
        "row 2: /pregnant: this field does not apply to the answers given; leave it empty"]
    assert db.scalar(select(func.count()).select_from(Subject)) == 0
