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
