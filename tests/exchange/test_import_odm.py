"""``ecrf import odm``: the CDISC example metadata converts and validates; XML attacks and malformed
files are refused clearly, with nothing written."""
from pathlib import Path

import pytest

from ecrf.definitions import load_study
from ecrf.errors import Invalid
from ecrf.exchange.import_odm import import_odm

REFERENCE = Path("/work/shared/reference/odm1-3-2")
EXAMPLES = sorted(p.name for p in REFERENCE.glob("example-*.xml"))


def odm(body, head='<?xml version="1.0" encoding="UTF-8"?>\n'):
    return (head + '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" ODMVersion="1.3.2" FileOID="F" '
            'FileType="Snapshot" CreationDateTime="2024-01-01T00:00:00">' + body + "</ODM>")


def test_there_are_examples_with_metadata():
    assert len(EXAMPLES) == 3


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_cdisc_example_converts_and_validates(name, tmp_path):
    conversion, loaded = import_odm(REFERENCE / name, "odm", tmp_path / "odm")
    assert loaded.forms and loaded.visits
    assert load_study(tmp_path / "odm").hash == loaded.hash
    assert all(where and message for where, message in conversion.warnings)


def test_the_ces_example_keeps_types_units_code_lists_and_checks(tmp_path):
    conversion, loaded = import_odm(REFERENCE / "example-cdisc-CES-metadata-1-3-2.xml", "ces", tmp_path / "ces")
    assert [v.label for v in loaded.visits] == ["Baseline Visit", "Week 1 Visit", "Week 2 Visit",
                                                "Patient Diary Event"]
    assert set(loaded.log_forms) == {"f_ae", "f_cm"}
    base = loaded.forms["f_baseline"]
    sex = base.field("gender")
    assert tuple(sex.schema["enum"]) == ("M", "F") and sex.ecrf["labels"]["M"] == "Male"
    sbp = next(f for f in base.fields if f.ecrf.get("unit") == "mm Hg" and "exclusiveMaximum" in f.schema)
    assert sbp.schema["type"] == "integer"
    assert base.field("dob").schema["format"] == "date"
    assert ("f_ae/i_ae_duration", "data type 'durationDatetime' has no equivalent in ecrf; left out") \
        in conversion.warnings


XXE = odm('<Study OID="S"><GlobalVariables><StudyName>&xxe;</StudyName></GlobalVariables></Study>',
          '<?xml version="1.0"?>\n<!DOCTYPE ODM [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')
LAUGHS = odm('<Study OID="S"><GlobalVariables><StudyName>&lol9;</StudyName></GlobalVariables></Study>',
             '<?xml version="1.0"?>\n<!DOCTYPE ODM [<!ENTITY lol "lol">'
             + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                       for i in range(1, 10)) + "]>\n")
PARAMETER = odm("", '<?xml version="1.0"?>\n<!DOCTYPE ODM [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>\n')


@pytest.mark.parametrize(("content", "message"), [
    (XXE, "refused: the file declares a DTD or entities"),
    (LAUGHS, "refused: the file declares a DTD or entities"),
    (PARAMETER, "refused: the file declares a DTD or entities"),
    ("<ODM><Study>", "not well-formed XML at line 1"),
    ('<?xml version="1.0"?><root/>', "not a CDISC ODM 1.3 file"),
    (odm(""), "holds no study metadata"),
    (odm('<Study OID="S"><MetaDataVersion OID="M" Name="M"><StudyEventDef OID="E" Name="E" Repeating="No" '
         'Type="Scheduled"><FormRef FormOID="NOPE" Mandatory="Yes"/></StudyEventDef></MetaDataVersion></Study>'),
     "StudyEventDef E: form 'NOPE' is not defined"),
])
def test_attacks_and_bad_files_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "in.xml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(Invalid) as exc:
        import_odm(path, "x", tmp_path / "x")
    assert message in str(exc.value)
    assert not (tmp_path / "x").exists()


def test_the_command_refuses_an_attack_with_one_line(cli, tmp_path):
    path = tmp_path / "in.xml"
    path.write_text(XXE, encoding="utf-8")
    result = cli("import", "odm", str(path), "--study-id", "x", "-o", str(tmp_path / "x"))
    assert result.exit_code == 1 and "refused" in result.output and "root:" not in result.output
    ok = cli("import", "odm", str(REFERENCE / EXAMPLES[0]), "--study-id", "x", "-o", str(tmp_path / "x"))
    assert ok.exit_code == 0 and "valid" in ok.output


SMALL = odm('''<Study OID="S"><GlobalVariables><StudyName>Small</StudyName><StudyDescription>d</StudyDescription>
<ProtocolName>p</ProtocolName></GlobalVariables>
<BasicDefinitions><MeasurementUnit OID="MU.KG" Name="kg"><Symbol><TranslatedText xml:lang="en">kg</TranslatedText></Symbol></MeasurementUnit></BasicDefinitions>
<MetaDataVersion OID="M" Name="M">
 <Protocol><StudyEventRef StudyEventOID="SE.V1" OrderNumber="1" Mandatory="Yes"/></Protocol>
 <StudyEventDef OID="SE.V1" Name="Visit 1" Repeating="No" Type="Scheduled"><FormRef FormOID="F.VS" Mandatory="Yes"/></StudyEventDef>
 <StudyEventDef OID="SE.UNS" Name="Unscheduled" Repeating="Yes" Type="Unscheduled"><FormRef FormOID="F.LB" Mandatory="No"/></StudyEventDef>
 <FormDef OID="F.VS" Name="Vitals" Repeating="No"><ItemGroupRef ItemGroupOID="IG.VS" Mandatory="Yes"/></FormDef>
 <FormDef OID="F.LB" Name="Labs" Repeating="No"><ItemGroupRef ItemGroupOID="IG.LB" Mandatory="Yes"/></FormDef>
 <ItemGroupDef OID="IG.VS" Name="Vitals" Repeating="No">
  <ItemRef ItemOID="IT.WT" Mandatory="Yes"/><ItemRef ItemOID="IT.WT2" Mandatory="No"/></ItemGroupDef>
 <ItemGroupDef OID="IG.LB" Name="Lab results" Repeating="Yes">
  <ItemRef ItemOID="IT.TEST" Mandatory="Yes"/><ItemRef ItemOID="IT.RES" Mandatory="No"/></ItemGroupDef>
 <ItemDef OID="IT.WT" Name="Weight" DataType="float" SignificantDigits="1" SASFieldName="WEIGHT">
  <Question><TranslatedText xml:lang="en">Weight</TranslatedText></Question>
  <RangeCheck Comparator="GE" SoftHard="Hard"><CheckValue>20</CheckValue></RangeCheck>
  <RangeCheck Comparator="LT" SoftHard="Soft"><CheckValue>200</CheckValue>
   <ErrorMessage><TranslatedText xml:lang="en">Please confirm a weight of 200 kg or more</TranslatedText></ErrorMessage></RangeCheck>
  <MeasurementUnitRef MeasurementUnitOID="MU.KG"/></ItemDef>
 <ItemDef OID="IT.WT2" Name="Weight again" DataType="integer" SASFieldName="WEIGHT"/>
 <ItemDef OID="IT.TEST" Name="Test" DataType="text" Length="8"><CodeListRef CodeListOID="CL.T"/></ItemDef>
 <ItemDef OID="IT.RES" Name="Result" DataType="float"/>
 <CodeList OID="CL.T" Name="Tests" DataType="text">
  <CodeListItem CodedValue="HGB"><Decode><TranslatedText xml:lang="en">Haemoglobin</TranslatedText></Decode></CodeListItem>
  <CodeListItem CodedValue="WBC"><Decode><TranslatedText>White cells</TranslatedText></Decode></CodeListItem></CodeList>
</MetaDataVersion></Study>''')


def test_items_groups_code_lists_checks_and_units(tmp_path):
    path = tmp_path / "small.xml"
    path.write_text(SMALL, encoding="utf-8")
    _, loaded = import_odm(path, "small", tmp_path / "small")
    assert loaded.title == "Small" and [v.label for v in loaded.visits] == ["Visit 1"]
    assert tuple(loaded.document["unscheduled_forms"]) == ("f_lb",)
    vs = loaded.forms["f_vs"]
    weight = vs.field("weight")
    assert (weight.schema["type"], weight.schema["minimum"], weight.ecrf["unit"], weight.ecrf["decimals"]) == \
        ("number", 20, "kg", 1)
    assert dict(weight.ecrf["warnings"][0]) == {"expect": "weight < 200",
                                                "message": "Please confirm a weight of 200 kg or more"}
    assert vs.field("weight_2").schema["type"] == "integer" and vs.field("weight").required
    table = loaded.forms["f_lb"].field("ig_lb")
    assert table.ecrf["widget"] == "table"
    columns = table.schema["items"]["properties"]
    assert tuple(columns["it_test"]["enum"]) == ("HGB", "WBC")
    assert dict(columns["it_test"]["x-ecrf"]["labels"]) == {"HGB": "Haemoglobin", "WBC": "White cells"}
    assert tuple(table.schema["items"]["required"]) == ("it_test",)
