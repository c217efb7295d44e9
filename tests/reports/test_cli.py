"""``ecrf sae report`` and ``ecrf casebook``: the same services and permission table as the web. Run
``--as`` a user, who confirms with their password; without ``--as`` the operator table decides."""
import json

import pytest
from sqlalchemy import select, update

from audit import audit_event
from ecrf.auth import permissions
from ecrf.capture.service import enrol_subject, save_form
from ecrf.errors import PermissionDenied
from ecrf.models import Subject


def operator_may(command):
    try:
        permissions.require_operator(command)
    except PermissionDenied:
        return False
    return True


def test_sae_report_issues_as_a_user_and_writes_the_pdf(cli, db, tmp_path, sae_study, site_subject,
                                                        make_user, kit):
    sae_study()
    make_user("nurse1", "site_staff", "saetest", sites=["01"], password=kit.PASSWORD)
    make_user("nurse2", "site_staff", "saetest", sites=["02"], password=kit.PASSWORD)
    site_subject()
    site_subject(key="01-002", ae=dict(kit.SERIOUS_AE, aeser="N"), meds=False)
    out = tmp_path / "report.pdf"

    def report(subject, user, password=kit.PASSWORD, target=out):
        return cli("sae", "report", "--study", "saetest", "--subject", subject, "--record", "1",
                   "-o", str(target), "--as", user, "--password-stdin", input=password + "\n")

    result = report("01-001", "nurse1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("SAETEST-SAE-001 version 1 (initial)")
    assert out.read_bytes().startswith(b"%PDF")
    assert "Report type: Initial" in kit.flat(kit.pdf_pages(out.read_bytes())[0])
    [event] = db.execute(select(audit_event).where(audit_event.c.action == "report_generated")).mappings()
    assert (event["actor_name"], event["actor_role"], event["channel"]) == ("nurse1", "site_staff", "cli")

    refused = report("01-002", "nurse1")
    assert refused.exit_code == 1 and "not serious" in refused.output
    other_site = report("01-001", "nurse2", target=tmp_path / "x.pdf")
    assert other_site.exit_code == 1 and "not found" in other_site.output
    wrong = report("01-001", "nurse1", password="not the password", target=tmp_path / "x.pdf")
    assert wrong.exit_code == 1 and "password" in wrong.output
    assert not (tmp_path / "x.pdf").exists()
    failed = db.execute(select(audit_event.c.actor_name).where(audit_event.c.action == "login_failed")).all()
    assert [name for (name,) in failed] == ["nurse1"]


def test_without_a_user_the_operator_table_decides(cli, tmp_path, sae_study, site_subject):
    sae_study()
    site_subject()
    result = cli("sae", "report", "--study", "saetest", "--subject", "01-001", "--record", "1",
                 "-o", str(tmp_path / "r.pdf"))
    assert (result.exit_code == 0) == operator_may("sae report"), result.output
    result = cli("casebook", "--study", "saetest", "--site", "02", "-o", str(tmp_path / "books"))
    assert (result.exit_code == 0) == operator_may("casebook"), result.output


@pytest.fixture
def site_of_subjects(db, actor, sae_study, site_subject, make_user, kit):
    """Site 01 with a signed subject (on arm armzeta, blinded) and one with a missing-data flag;
    site 02 with a third subject."""
    from ecrf.actor import Actor
    from ecrf.review.signatures import sign

    sae_study(masking="double")
    user = make_user("ida", "investigator", "saetest", sites=["01"], password=kit.PASSWORD)
    make_user("spon", "sponsor", "saetest", password=kit.PASSWORD)
    record = site_subject()
    sign(db, Actor(user.id, "ida", "investigator"), "saetest", "01-001", "form", kit.PASSWORD,
         record_id=record.id)
    enrol_subject(db, actor, "saetest", "01", "01-002")
    save_form(db, actor, "saetest", "01-002", "screening", "dm", {"sex": "M", "age": 70}, complete=True,
              missing={"/brthdtc": {"flag": "unknown", "reason": "patient does not know"}})
    save_form(db, actor, "saetest", "01-002", "", "ae", {"aeterm": "Dysgeusia"})
    enrol_subject(db, actor, "saetest", "02", "02-001")
    db.execute(update(Subject).where(Subject.key == "01-001").values(arm="armzeta"))


def test_casebook_writes_one_pdf_per_subject_of_the_site(cli, db, tmp_path, site_of_subjects, kit):
    books = tmp_path / "books"
    result = cli("casebook", "--study", "saetest", "--site", "01", "-o", str(books), "--as", "ida",
                 "--password-stdin", input=kit.PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in books.iterdir()) == ["01-001.pdf", "01-002.pdf"]
    assert "2 casebook(s)" in result.output

    pages = kit.pdf_pages((books / "01-001.pdf").read_bytes())
    text = kit.flat("\n".join(pages))
    for n, page in enumerate(pages, start=1):
        assert "Casebook · Subject 01-001" in kit.flat(page)
        assert kit.flat(page).endswith(f"Page {n} of {len(pages)}")
    for expected in ("Subject casebook", "Screening", "Demographics", "Sex Female", "Day 0",
                     "Study treatment", "Kit number K-0042", "Log: Adverse events", "Adverse events · entry 1",
                     "Adverse event Salivary gland swelling", "Log: Concomitant medications",
                     "Electronically signed by Ida (ida)", "Appendix: audit trail of subject 01-001",
                     "Arm (blinded)", "Generated by ida"):
        assert expected in text, expected
    audit_part = text.split("Appendix: audit trail")[1]
    assert "enrol" in audit_part and "sign" in audit_part and "Pilocarpin" in audit_part
    assert not any(word in text for word in kit.ARM_WORDS)

    other = kit.flat("\n".join(kit.pdf_pages((books / "01-002.pdf").read_bytes())))
    assert "Date of birth ⚑ Unknown: patient does not know" in other
    assert "Adverse event Dysgeusia" in other
    exports = db.execute(select(audit_event.c.subject, audit_event.c.actor_name, audit_event.c.new_value)
                         .where(audit_event.c.action == "export")).all()
    assert sorted((s, who) for s, who, _ in exports) == [("01-001", "ida"), ("01-002", "ida")]
    assert all(len(json.loads(v)["sha256"]) == 64 for _, _, v in exports)


def test_casebooks_need_a_user_who_sees_the_sites_forms(cli, tmp_path, site_of_subjects, kit):
    for user, site in (("spon", "01"), ("ida", "02")):
        result = cli("casebook", "--study", "saetest", "--site", site, "-o", str(tmp_path / user),
                     "--as", user, "--password-stdin", input=kit.PASSWORD + "\n")
        assert result.exit_code == 1, result.output
        assert not (tmp_path / user).exists()
