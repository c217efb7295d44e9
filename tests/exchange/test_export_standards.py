"""ODM 1.3.2, Dataset-JSON 1.1 and the statistics formats: valid against the official schemas in
/work/shared/reference (when present), read back by independent readers (lxml, odmlib, pyreadstat)
with the same subjects, forms and values."""
import json
from pathlib import Path

import pytest

from tests.exchange.conftest import AE_1, DM_1, DM_2, EX_1

REFERENCE = Path("/work/shared/reference")
ODM_XSD = REFERENCE / "odm1-3-2" / "ODM1-3-2.xsd"
DATASET_SCHEMA = REFERENCE / "dataset-json" / "dataset.schema.json"
DATASET_EXAMPLE = REFERENCE / "dataset-json" / "example-sdtm-dm.json"
needs_reference = pytest.mark.skipif(not ODM_XSD.exists() or not DATASET_SCHEMA.exists(),
                                     reason="the CDISC reference schemas are not on this machine")


@needs_reference
def test_the_odm_export_is_valid_against_the_official_schema(xs, export):
    etree = pytest.importorskip("lxml.etree")
    schema = etree.XMLSchema(etree.parse(str(ODM_XSD)))
    for options in ({}, {"audit": True, "signatures": True}):
        _, out = export("odm", **options)
        assert schema.validate(etree.parse(str(out))), schema.error_log


def _odm(path):
    from odmlib import loader, odm_loader

    reader = loader.ODMLoader(odm_loader.XMLODMLoader(model_package="odm_1_3_2",
                                                      ns_uri="http://www.cdisc.org/ns/odm/v1.3"))
    reader.open_odm_document(str(path))
    return reader.load_odm()


def test_odmlib_reads_back_the_same_subjects_forms_and_values(xs, export):
    pytest.importorskip("odmlib")
    _, out = export("odm", audit=True)
    odm = _odm(out)
    mdv = odm.Study[0].MetaDataVersion[0]
    items = {i.OID: i for i in mdv.ItemDef}
    assert items["IT.dm.onset"].DataType == "partialDate" and items["IT.dm.weight"].DataType == "float"
    assert {c.CodedValue for c in next(c for c in mdv.CodeList if c.OID == "CL.IT.dm.grade").CodeListItem} \
        == {"1", "2", "3"}
    values = {}
    for subject in odm.ClinicalData[0].SubjectData:
        for event in subject.StudyEventData:
            for form in event.FormData:
                for group in form.ItemGroupData:
                    for item in group.ItemData:
                        key = (subject.SubjectKey, subject.SiteRef.LocationOID, event.StudyEventOID,
                               form.FormOID, form.FormRepeatKey, group.ItemGroupRepeatKey, item.ItemOID)
                        values[key] = item.Value
    one = (xs.one, "LOC.01", "SE.v1", "F.dm", None, None)
    assert values[(*one, "IT.dm.name")] == DM_1["name"]
    assert values[(*one, "IT.dm.onset")] == "2024-03"
    assert values[(*one, "IT.dm.grade")] == "2"
    assert values[(*one, "IT.dm.weight.MISSING")] == "not_done"
    assert values[(*one, "IT.dm.weight.REASON")] == "scale broken"
    assert (*one, "IT.dm.weight") not in values
    assert values[(*one, "IT.dm.symptoms.fever")] == "1"
    two = (xs.two, "LOC.02", "SE.v1", "F.dm", None, None)
    assert values[(*two, "IT.dm.name")] == DM_2["name"] and values[(*two, "IT.dm.weight")] == "70.5"
    assert values[(xs.one, "LOC.01", "SE.v1", "F.ex", None, "2", "IT.ex.doses.route")] == EX_1["doses"][1]["route"]
    assert values[(xs.one, "LOC.01", "SE.LOGS", "F.ae", "2", None, "IT.ae.aestdat")] == AE_1[1]["aestdat"]
    assert {k[0] for k in values} == {xs.one, xs.two}


@needs_reference
@pytest.mark.parametrize("fmt", ["dataset-json", "ndjson"])
def test_dataset_json_is_valid_and_shares_the_odm_item_oids(xs, export, fmt):
    import jsonschema

    validator = jsonschema.Draft201909Validator(json.loads(DATASET_SCHEMA.read_text(encoding="utf-8")))
    assert not list(validator.iter_errors(json.loads(DATASET_EXAMPLE.read_text(encoding="utf-8"))))
    _, out = export(fmt)
    _, odm_out = export("odm")
    odm_items = {i.OID for i in _odm(odm_out).Study[0].MetaDataVersion[0].ItemDef}
    datasets = {}
    for path in sorted(out.glob("*.json" if fmt == "dataset-json" else "*.ndjson")):
        if path.name == "manifest.json":
            continue
        if fmt == "ndjson":
            lines = path.read_text(encoding="utf-8").splitlines()
            document = dict(json.loads(lines[0]), rows=[json.loads(line) for line in lines[1:]])
        else:
            document = json.loads(path.read_text(encoding="utf-8"))
        assert not list(validator.iter_errors(document)), path.name
        assert document["records"] == len(document["rows"])
        data_oids = {c["itemOID"] for c in document["columns"] if not c["itemOID"].startswith("IT.KEY.")}
        assert data_oids <= odm_items
        datasets[document["name"]] = document
    assert set(datasets) == {"dm", "ex", "ex__doses", "ae"}
    dm = datasets["dm"]
    names = [c["name"] for c in dm["columns"]]
    rows = {row[0]: dict(zip(names, row, strict=True)) for row in dm["rows"]}
    assert rows[xs.one]["name"] == DM_1["name"] and rows[xs.one]["onset"] == "2024-03"
    assert rows[xs.one]["grade"] == 2 and rows[xs.one]["weight"] is None
    assert rows[xs.one]["weight_missing"] == "not_done" and rows[xs.two]["weight"] == 70.5
    doses = datasets["ex__doses"]
    assert [row[-2:] for row in doses["rows"]] == [[d["dose"], d["route"]] for d in EX_1["doses"]]


@pytest.mark.parametrize("fmt", ["dta", "sav", "xpt"])
def test_statistics_files_read_back_with_labels(xs, export, fmt):
    pyreadstat = pytest.importorskip("pyreadstat")
    _, out = export(fmt)
    read = {"dta": pyreadstat.read_dta, "sav": pyreadstat.read_sav, "xpt": pyreadstat.read_xport}[fmt]
    frame, meta = read(str(out / f"dm.{fmt}"))
    rows = {row["subject"]: row for row in frame.to_dict("records")}
    assert rows[xs.one]["name"] == DM_1["name"] and rows[xs.one]["onset"] == "2024-03"
    assert rows[xs.one]["grade"] == 2 and rows[xs.one]["weight_missing"] == "not_done"
    assert rows[xs.two]["weight"] == 70.5 and rows[xs.two]["sex_label"] == "Male"
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["weight"] == "Weight"
    if fmt != "xpt":
        assert meta.variable_value_labels["grade"] == {1: "Mild", 2: "Moderate", 3: "Severe"}
    doses, _ = read(str(out / f"ex__doses.{fmt}"))
    assert list(doses["dose"]) == [2.5, 5.0]


def test_a_missing_extra_is_named(monkeypatch, xs, db, actor, tmp_path):
    """Without pyreadstat the statistics formats are refused with the extra to install."""
    import sys

    from ecrf.exchange.export_service import operator_scope, run_export
    from ecrf.exchange.export_stats import ExtraMissing

    monkeypatch.setitem(sys.modules, "pyreadstat", None)
    with pytest.raises(ExtraMissing, match=r"ecrf\[stats\]"):
        run_export(db, actor, operator_scope(db, "xs"), "dta", tmp_path / "o")
    assert not (tmp_path / "o").exists()


@needs_reference
def test_odm_carries_audit_records_and_signatures_for_archiving(xs, db, actor, export, make_user):
    etree = pytest.importorskip("lxml.etree")
    from ecrf.actor import Actor
    from ecrf.capture.service import save_form
    from ecrf.review import signatures
    from tests.conftest import TEST_PASSWORD

    doc = make_user("doc", "investigator", "xs")
    signer = Actor(doc.id, doc.username, "investigator")
    saved = save_form(db, signer, "xs", xs.one, "v1", "ex", EX_1, complete=True)
    signatures.sign(db, signer, "xs", xs.one, "form", TEST_PASSWORD, record_id=saved.record.id)
    _, out = export("odm", audit=True, signatures=True)
    schema = etree.XMLSchema(etree.parse(str(ODM_XSD)))
    assert schema.validate(etree.parse(str(out))), schema.error_log
    odm = _odm(out)
    users = {u.OID: u.LoginName._content for u in odm.AdminData[0].User}
    subject = next(s for s in odm.ClinicalData[0].SubjectData if s.SubjectKey == xs.one)
    form = next(f for e in subject.StudyEventData for f in e.FormData if f.FormOID == "F.ex")
    assert users[form.Signature.UserRef.UserOID] == "doc"
    dose = next(i for g in form.ItemGroupData if g.ItemGroupRepeatKey == "2" for i in g.ItemData
                if i.ItemOID == "IT.ex.doses.dose")
    assert users[dose.AuditRecord.UserRef.UserOID] == actor.name  # its last change: the fixture's save
