"""CSV exports: the wide and long layouts read back equal to the stored values; dictionary,
manifest, audit event; formula cells neutralised; Danish and Chinese intact."""
import csv
import hashlib
import json

from sqlalchemy import select

from audit import audit_event
from tests.exchange.conftest import AE_1, DM_1, DM_2, EX_1


def read(path):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_one_file_per_form_and_group_with_labels_flags_and_partial_dates(xs, export):
    result, out = export("csv")
    assert sorted(p.name for p in out.iterdir()) == [
        "ae.csv", "dictionary.csv", "dm.csv", "ex.csv", "ex__doses.csv", "manifest.json", "subjects.csv"]
    dm = {row["subject"]: row for row in read(out / "dm.csv")}
    one, two = dm[xs.one], dm[xs.two]
    assert (one["site"], one["visit"], one["visit_date"], one["record"]) == ("01", "v1", "2026-01-05", "1")
    assert one["form_version"].startswith("dm@") and one["status"] == "draft"
    assert one["name"] == DM_1["name"]                      # UTF-8: Danish and Chinese intact
    assert (one["sex"], one["sex_label"], one["grade"], one["grade_label"]) == ("F", "Female", "2", "Moderate")
    assert one["onset"] == "2024-03" and two["onset"] == "2023"   # partial dates as written
    assert (one["weight"], one["weight_missing"], one["weight_missing_reason"]) == ("", "not_done", "scale broken")
    assert (two["weight"], two["weight_missing"]) == ("70.5", "")
    assert (one["symptoms__cough"], one["symptoms__fever"], two["symptoms__cough"]) == ("1", "1", "0")
    assert two["name"] == "'" + DM_2["name"]                # a formula is shown as text
    doses = read(out / "ex__doses.csv")
    assert [(d["subject"], d["visit"], d["record"], d["row"], d["dose"], d["route"]) for d in doses] == [
        (xs.one, "v1", "1", "1", "2.5", "oral"), (xs.one, "v1", "1", "2", "5", EX_1["doses"][1]["route"])]
    ae = read(out / "ae.csv")
    assert [(a["visit"], a["record"], a["aeterm"], a["aestdat"]) for a in ae] == [
        ("", "1", AE_1[0]["aeterm"], "2026-01"), ("", "2", "'+Nausea", "2026-01-07")]
    assert result.rows == {"subjects": 2, "dm": 2, "ex": 1, "ex__doses": 2, "ae": 2}


def test_dictionary_and_manifest_describe_every_file(xs, export):
    result, out = export("csv")
    dictionary = {row["variable"]: row for row in read(out / "dictionary.csv") if row["table"] == "dm"}
    weight = dictionary["weight"]
    assert (weight["type"], weight["unit"], weight["range"], weight["origin"]) == ("float", "kg", "20..300", "entered")
    assert weight["form_versions"].startswith("dm@")
    assert dictionary["grade"]["code_list"] == "1=Mild; 2=Moderate; 3=Severe"
    assert dictionary["onset"]["type"] == "partialDate"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["rows"]["dm"] == 2 and manifest["blinding"].startswith("blinded")
    hashed = hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False).encode()).hexdigest()
    assert hashed == result.manifest_sha256


def test_every_export_is_an_audited_event(xs, export, db):
    result, _ = export("csv", forms=("dm",))
    event = db.execute(select(audit_event).order_by(audit_event.c.seq.desc()).limit(1)).one()
    assert (event.action, event.study, event.field, event.channel) == ("export", "xs", "/data", "cli")
    described = json.loads(event.new_value)
    assert described == {"format": "csv", "sites": "all", "forms": ["dm"], "rows": {"subjects": 2, "dm": 2},
                         "manifest_sha256": result.manifest_sha256, "arms": "blinded"}


def test_long_layout_has_one_row_per_subject_visit_and_field(xs, export):
    _, out = export("csv-long")
    rows = read(out / "long.csv")
    mine = {(r["form"], r["record"], r["row"], r["field"]): r for r in rows if r["subject"] == xs.one}
    assert mine[("dm", "1", "", "grade")]["value"] == "2" and mine[("dm", "1", "", "grade")]["label"] == "Moderate"
    weight = mine[("dm", "1", "", "weight")]
    assert (weight["value"], weight["missing"], weight["missing_reason"]) == ("", "not_done", "scale broken")
    assert mine[("ex", "1", "2", "doses/dose")]["value"] == "5"
    assert mine[("ae", "2", "", "aestdat")]["value"] == "2026-01-07"
    assert mine[("dm", "1", "", "symptoms__fever")]["value"] == "1"
