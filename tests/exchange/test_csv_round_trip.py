"""The CSV round trip: the CSV export of the filled export study (tests/exchange/conftest.py: a
multiple-choice field, a missing-data flag with its reason, integer and text code lists, a partial
date, a repeating group in its own file, a log form) imported with ``ecrf import data`` into a fresh
copy of the study stores the same values, flags, statuses and visit dates; importing it again
changes nothing."""
import json
import shutil

import pytest
from sqlalchemy import select

from ecrf.errors import Invalid
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


def test_bad_option_cells_and_orphan_group_rows_refuse_the_file(xs, export, db, make_user, tmp_path):
    from ecrf.exchange.import_data import ImportRefused, import_data

    user = make_user("importer", "data_manager", "xs", password=PASSWORD)
    _, out = export("csv")
    before = stored(db, "xs")
    dm = (out / "dm.csv").read_text(encoding="utf-8-sig").splitlines()
    header = dm[0].split(",")
    cells = next(line for line in dm[1:] if line.startswith(xs.two)).split(",")
    cells[header.index("symptoms__fever")] = "2"
    bad = tmp_path / "dm.csv"
    bad.write_text("\n".join([dm[0], ",".join(cells)]) + "\n", encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        import_data(db, user, "xs", "dm", bad)
    assert refused.value.lines() == ["row 2: /symptoms__fever: '2' is not 1 (chosen) or 0"]

    doses = (out / "ex__doses.csv").read_text(encoding="utf-8-sig").splitlines()
    orphans = tmp_path / "ex__doses.csv"
    orphans.write_text("\n".join([doses[0], *[line.replace("v1", "v2", 1) for line in doses[1:]]]) + "\n",
                       encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        import_data(db, user, "xs", "ex", out / "ex.csv", groups=[orphans])
    assert refused.value.lines() == [f"row 1: /doses: 2 row(s) of the group file for subject {xs.one!r}, "
                                     "visit 'v2', record '1' belong to no row of the form's file"]
    with pytest.raises(Invalid, match="<form>__<group>.csv"):
        import_data(db, user, "xs", "ex", out / "ex.csv", groups=[out / "dm.csv"])
    assert stored(db, "xs") == before
