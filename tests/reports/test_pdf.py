"""The SAE report PDF, checked by its extracted text and its pages; rendered from hand-built inputs
(no database), once per module."""
import json
import logging
import re
import subprocess

import pytest

from ecrf.definitions import load_study
from ecrf.errors import Invalid
from ecrf.randomization import can_see_arm
from ecrf.reports import pdf, sae


DANISH = ("Patienten fik hævelse af glandula submandibularis; behandlet på øre-næse-hals-afdelingen "
          "(Ærø, Østerbro, Århus).")
CHINESE = "患者出现唾液腺肿胀，已住院治疗。广西医科大学第一附属医院"
#: A word with no break opportunity: it must wrap inside the box, not run off the page.
UNBROKEN = "x" * 300
LONG_TAIL = "End of the very long narrative: sidste sætning."


@pytest.fixture(scope="module")
def spec(kit, tmp_path_factory):
    return load_study(kit.write_study(tmp_path_factory.mktemp("studies"), masking="none"))


def make_inputs(kit, spec, ae=None, **changes):
    narrative = "\n".join([DANISH, CHINESE, UNBROKEN] + [
        f"Dag {i}: patienten blev observeret; hævelsen aftog gradvist, og der var ingen feber."
        for i in range(120)
    ] + [LONG_TAIL])
    fields = dict(
        spec=spec, site_key="02", site_name="广西医科大学第一附属医院", site_timezone="Asia/Shanghai",
        subject_key="02-007", ae=sae.Entry(spec.forms["ae"], dict(ae or kit.SERIOUS_AE, saenarr=narrative,
                                                                    saeexpect="UNEXPECTED"), 3),
        show_arm=True, arm="armzeta",
        demographics={"sex": "F", "age": 61, "brthdtc": "1965-04-02", "initials": "QXZ"},
        demographics_form=spec.forms["dm"],
        exposures=(sae.Entry(spec.forms["ex"], {"exstdtc": "2026-11-18", "exkit": "K-0042", "exvoltot": 2.0},
                             1, "Day 0"),),
        medications=(
            sae.Entry(spec.forms["cm"], {"cmtrt": "Pilocarpin", "cmindc": "Mundtørhed", "cmdstxt": "5",
                                         "cmdosu": "mg", "cmroute": "ORAL", "cmstdat": "2025-01",
                                         "cmongo": "Y"}, 1),
            sae.Entry(spec.forms["cm"], {"cmtrt": "Dicloxacillin", "cmindc": "Swelling", "cmaeno": 3,
                                         "cmdstxt": "1000", "cmdosu": "mg", "cmstdat": "2026-11-20",
                                         "cmongo": "Y"}, 2)),
        signature={"name": "Ida Ibsen", "username": "ida", "meaning": "I approve the data in this form",
                   "signed_at": "2026-11-21 17:00 CST (Asia/Shanghai)"},
        reporter={"name": "Wei Zhang", "username": "wei", "role": "investigator"})
    fields.update(changes)
    return sae.SaeInputs(**fields)


def finish(content, version=1, changes=None):
    content["changes"] = changes
    content["report"] = {"number": "SAETEST-SAE-004", "version": version,
                         "type": "initial" if version == 1 else "follow-up",
                         "type_label": "Initial" if version == 1 else f"Follow-up {version - 1}",
                         "issued_at": "2026-11-20 18:00 CST (Asia/Shanghai)", "issued_at_utc": "",
                         "previous": {"version": version - 1, "sha256": "ab" * 32, "issued_at": "x"}
                         if version > 1 else None,
                         "due": "2026-11-21 16:30 CST (Asia/Shanghai)", "hours": 24, "overdue": False}
    return content


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def report(kit, spec):
    """One long report (Danish, Chinese, an unbreakable word): data, page texts, WeasyPrint warnings."""
    content = finish(sae.build_content(make_inputs(kit, spec)))
    collect = _Collect()
    logging.getLogger("weasyprint").addHandler(collect)
    try:
        rendered = pdf.render_pdf("reports/sae.html", {"c": content})
    finally:
        logging.getLogger("weasyprint").removeHandler(collect)
    return rendered, kit.pdf_pages(rendered.data), content, collect.messages


def test_the_template_renders_without_warnings(report):
    """No CSS WeasyPrint ignores, no resource it could not load."""
    assert report[3] == []


def test_the_report_has_the_cioms_sections_and_the_trial_additions(kit, report):
    _, pages, _, _ = report
    text = kit.flat("\n".join(pages))
    for heading in ("Serious adverse event report (CIOMS I)", "I. Reaction information", "Patient",
                    "Seriousness criteria", "Describe reaction(s): narrative", "II. Suspect drug information",
                    "Causality and expectedness", "III. Concomitant drug(s) and history",
                    "IV. Sponsor and protocol", "Reporter"):
        assert heading in text
    assert "Salivary gland swelling" in text and "2026-11-19" in text
    assert "Recovering/resolving" in text
    assert "Zetacell active" in text and "K-0042" in text and "Total volume injected: 2.0 mL" in text
    assert "Relationship to the study treatment Possibly related" in text
    assert "Relationship to the injection procedure Probably related" in text
    assert "Expectedness Unexpected" in text
    assert "Rigshospitalet sponsor office" in text and "SAE-TEST-01" in text and "NCT00000001" in text
    assert "Wei Zhang (wei), investigator" in text
    assert "Sponsor case number SAETEST-SAE-004" in text


def test_seriousness_criteria_are_ticked_as_answered(kit, report):
    text = kit.flat("\n".join(report[1]))
    assert "Involved or prolonged inpatient hospitalisation ☒ Yes" in text
    for unticked in ("Patient died", "Life-threatening", "Congenital anomaly or birth defect",
                     "Other medically important condition"):
        assert f"{unticked} ☐ No" in text


def test_the_patient_is_identified_only_by_subject_sex_age_and_year_of_birth(kit, report):
    text = kit.flat("\n".join(report[1]))
    assert "Subject 02-007" in text and "Sex Female" in text and "Age 61 years" in text
    assert "Year of birth 1965" in text and "Country CN" in text
    assert "QXZ" not in text and "1965-04-02" not in text
    assert "QXZ" not in json.dumps(report[2])


def test_concomitant_products_come_from_the_cm_log_and_treatments_of_the_event_apart(kit, report):
    text = kit.flat("\n".join(report[1]))
    concomitant = text.split("Concomitant products (excluding")[1].split("Products given to treat")[0]
    assert "Pilocarpin" in concomitant and "Mundtørhed" in concomitant and "Dicloxacillin" not in concomitant
    assert "Dicloxacillin" in text.split("Products given to treat the reaction")[1]


def test_every_page_names_study_site_subject_report_number_and_type_and_counts_pages(kit, report):
    rendered, pages, _, _ = report
    assert rendered.pages == len(pages) >= 3
    for n, page in enumerate(pages, start=1):
        text = kit.flat(page)
        assert "SAE report SAETEST-SAE-004" in text
        assert "Report type: Initial (version 1)" in text
        assert "Study saetest · Site 02 · Subject 02-007" in text
        assert text.endswith(f"Page {n} of {len(pages)}")


def test_danish_and_chinese_text_is_extracted_intact(kit, report):
    pages = report[1]
    whole = "\n".join(pages)
    assert "\x00" not in whole
    assert kit.flat(DANISH) in kit.flat(whole)
    assert kit.cjk(CHINESE) in kit.cjk(whole)
    assert "广西医科大学第一附属医院" in kit.cjk(whole)  # the site name, in a table cell
    for char in "æøåÆØÅ":
        assert char in whole


def test_a_very_long_narrative_is_kept_whole_and_inside_the_page(kit, report):
    rendered, pages, _, _ = report
    whole = "\n".join(pages)
    assert kit.flat(LONG_TAIL) in kit.flat(whole)
    assert "x" * 300 == "".join(re.findall(r"x{10,}", "".join(whole.split())))[:300]
    words = _word_boxes(rendered.data)
    assert words, "pdftotext found no words"
    for page_width, page_height, x_max, y_max, word in words:
        assert x_max <= page_width - 14 * 72 / 25.4 + 1, f"{word!r} runs into the right margin"
        assert y_max <= page_height, f"{word!r} runs off the page"


def _word_boxes(data):
    """(page width, page height, xMax, yMax, word) of every word, from poppler's pdftotext -bbox."""
    out = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=data, capture_output=True, check=True)
    html = out.stdout.decode("utf-8")
    boxes = []
    for page in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', html, re.S):
        width, height = float(page.group(1)), float(page.group(2))
        words = r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>'
        for word in re.finditer(words, page.group(3)):
            boxes.append((width, height, float(word.group(1)), float(word.group(2)), word.group(3)))
    return boxes


def test_the_signature_manifestation_shows_name_time_and_meaning(kit, report):
    text = kit.flat("\n".join(report[1]))
    assert ("Electronically signed by Ida Ibsen (ida) Date and time: 2026-11-21 17:00 CST (Asia/Shanghai) "
            "Meaning: I approve the data in this form") in text


def test_a_follow_up_lists_what_changed_since_the_previous_version(kit, spec):
    before = sae.build_content(make_inputs(kit, spec))
    after = sae.build_content(make_inputs(kit, spec, ae=dict(kit.SERIOUS_AE, aeout="RECOVERED/RESOLVED",
                                                        aesmie="Y"), signature=None))
    changes = sae.changes_between(before, after)
    assert {c["item"]: (c["old"], c["new"]) for c in changes} == {
        "Seriousness: Other medically important condition": ("No", "Yes"),
        "Reaction: outcome": ("Recovering/resolving", "Recovered/resolved"),
        "Investigator signature": ("Ida Ibsen, 2026-11-21 17:00 CST (Asia/Shanghai)", "not signed"),
    }
    assert sae.changes_between(before, before) == []


def test_without_the_arm_the_suspect_product_is_the_blinded_study_treatment(kit, spec):
    content = sae.build_content(make_inputs(kit, spec, show_arm=False, arm=None))
    assert content["suspect"]["product"] == "Blinded study treatment"
    stored = json.dumps(content, ensure_ascii=False)
    assert not any(word in stored for word in kit.ARM_WORDS)


# --- checks ---------------------------------------------------------------------------------------

def test_a_non_serious_event_is_refused_naming_the_seriousness_field(kit, spec):
    with pytest.raises(Invalid) as caught:
        sae.check_reportable(spec.forms["ae"], dict(kit.SERIOUS_AE, aeser="N"), 2)
    assert "not serious" in str(caught.value)
    assert caught.value.errors == [("/aeser", "must be Yes for an SAE report")]


def test_an_incomplete_event_is_refused_naming_every_missing_field(kit, spec):
    data = {k: v for k, v in kit.SERIOUS_AE.items() if k not in ("saenarr", "saeawdtc", "aerel", "aesdth")}
    with pytest.raises(Invalid) as caught:
        sae.check_reportable(spec.forms["ae"], data, 2)
    message = str(caught.value)
    for title, name in (("SAE narrative", "saenarr"), ("Investigator aware of the SAE", "saeawdtc"),
                        ("Relationship to the study treatment", "aerel"), ("Results in death", "aesdth")):
        assert f"{title} ({name})" in message
    assert {p for p, _ in caught.value.errors} == {"/saenarr", "/saeawdtc", "/aerel", "/aesdth"}


def test_a_serious_event_needs_one_criterion_answered_yes(kit, spec):
    data = dict(kit.SERIOUS_AE, aeshosp="N")
    with pytest.raises(Invalid) as caught:
        sae.check_reportable(spec.forms["ae"], data, 1)
    assert "at least one seriousness criterion" in str(caught.value)


# --- blinding -------------------------------------------------------------------------------------

def test_can_see_arm_hides_arms_in_a_blinded_study_except_from_unblinded_roles(kit, tmp_path):
    blinded = load_study(kit.write_study(tmp_path, "blind", masking="double"))
    open_label = load_study(kit.write_study(tmp_path, "open", masking="none"))
    for role in ("investigator", "site_staff", "monitor", "data_manager", "sponsor", "admin"):
        assert can_see_arm(None, role, blinded) is False
        assert can_see_arm(None, role, open_label) is True
    assert can_see_arm(None, "pharmacist", blinded) is True


# --- the closed door ------------------------------------------------------------------------------

def test_the_url_fetcher_serves_only_ecrfs_static_files():
    fetcher = pdf.closed_fetcher()
    response = fetcher.fetch(pdf.STATIC_BASE + "ecrf.css")
    assert b"--accent" in response.read() and response.content_type == "text/css"
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/x.png", "https://example.org/a.css",
                "data:text/css,body{}", pdf.STATIC_BASE + "../../../../etc/passwd",
                pdf.STATIC_BASE + "%2e%2e/%2e%2e/config.py", "https://ecrf.invalid/etc/passwd"):
        with pytest.raises(pdf.RefusedFetch):
            fetcher.fetch(url)


def test_a_template_cannot_pull_in_local_files_or_the_network(kit):
    fetcher = pdf.closed_fetcher()
    html = ('<link rel="stylesheet" href="file:///etc/passwd"><img src="http://127.0.0.1:9/x.png">'
            '<img src="/etc/hostname"><p>ok</p>')
    rendered = pdf.html_to_pdf(html, fetcher)
    assert "ok" in kit.pdf_pages(rendered.data)[0]
    assert fetcher.refused == ["file:///etc/passwd", "http://127.0.0.1:9/x.png",
                               "https://ecrf.invalid/etc/hostname"]


def test_characters_without_a_glyph_are_shown_as_their_code_and_do_not_garble_the_text(kit):
    text = "før \ue000 bell\x07 thai \u0e31 中文"
    assert pdf.glyph_safe(text) == "før [U+E000] bell[U+0007] thai [U+0E31] 中文"
    page = kit.pdf_pages(pdf.html_to_pdf(f'<p style="font-family: \'DejaVu Sans\', \'Noto Sans CJK SC\'">'
                                     f'{pdf.glyph_safe(text)}</p>').data)[0]
    assert "\x00" not in page and "før" in page and "[U+E000]" in page and "中文" in page
