"""The CSV round trip: the CSV export of the filled export study (tests/exchange/conftest.py: a
multiple-choice field, a missing-data flag with its reason, integer and text code lists, a partial
date, a repeating group in its own file, a log form) imported with ``ecrf import data`` into a fresh
copy of the study stores the same values, flags, statuses and visit dates; importing it again
changes nothing."""
import json
import shutil

from sqlalchemy import select

from ecrf.models import FormRecord, Subject, SubjectVisit
from tests.exchange.conftest import write_study

PASSWORD = "round trip password 1"


def stored(db, study_key):
    """(subject, visit, form, entry) -> (data, missing, status), and (subject, visit) -> visit date."""
    from ecrf.studies import get_study

    study = get_study(db, study_key)
    records = {(s.key, r.visit_key, r.form_key, r.seq): (r.data, r.missing or {}, str(r.status))
               for r, s in db.execute(select(FormRecord, Subject).join(Subject, Subject.id == FormRecord.subject_id)
                                      .where(Subject.study_id == study.id))}
    dates = {(s.key, v.visit_key): v.visit_date
             for v, s in db.execute(select(SubjectVisit, Subject).join(Subject, Subject.id == SubjectVisit.subject_id)
                                    .where(Subject.study_id == study.id))}
    return records, dates


def test_the_csv_export_imports_back_into_a_fresh_copy_with_the_same_values(xs, export, db, cli, load_study,
                                                                            make_user, tmp_path):
    _, out = export("csv")
    assert (out / "dm.csv").exists() and (out / "ex__doses.csv").exists()
    header = (out / "dm.csv").read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert "symptoms__cough" in header and "weight_missing_reason" in header  # the export's own layout

    copy = tmp_path / "copy" / "xscopy"
    shutil.copytree(write_study(tmp_path / "again"), copy)
    document = json.loads((copy / "study.json").read_text(encoding="utf-8"))
    (copy / "study.json").write_text(json.dumps(document | {"id": "xscopy"}), encoding="utf-8")
    load_study(copy)
    make_user("importer", "data_manager", "xscopy", password=PASSWORD)

    def run(form, *more):
        result = cli("import", "data", str(out / f"{form}.csv"), "--study", "xscopy", "--form", form, *more,
                     "--as", "importer", "--password-stdin", input=PASSWORD + "\n")
        assert result.exit_code == 0, result.output
        return result.output

    for form, more in (("dm", ()), ("ex", ("--group", str(out / "ex__doses.csv"))), ("ae", ())):
        assert "0 unchanged" in run(form, *more)
    records, dates = stored(db, "xscopy")
    assert (records, dates) == stored(db, "xs")
    assert records[(xs.one, "v1", "dm", 1)][1]["/weight"] == {"flag": "not_done", "reason": "scale broken"}
    assert records[(xs.one, "v1", "dm", 1)][0]["symptoms"] == ["cough", "fever"]
    assert len(records[(xs.one, "v1", "ex", 1)][0]["doses"]) == 2

    for form, more in (("dm", ()), ("ex", ("--group", str(out / "ex__doses.csv"))), ("ae", ())):
        assert " 0 created, 0 changed" in run(form, *more)
    assert stored(db, "xscopy") == (records, dates)
