"""The form pages: labels and error messages tied to inputs, drafts and completion, field errors that
keep what was typed, escaping, reasons for change, the conflict page, missing-data flags, repeating
groups and conditional fields without script, log forms, permissions, and generated posts to every
reference form (no 500, nothing stored when refused)."""
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from audit import audit_event, head
from ecrf.capture.service import enrol_subject, save_form
from ecrf.formgen import layout_for
from ecrf.models import FormRecord
from ecrf.paths import resource

KITCHEN_SINK = json.loads((Path(__file__).parents[1] / "formgen" / "kitchen_sink.json").read_text("utf-8"))
LOG = {"type": "object", "title": "Events",
       "properties": {"term": {"type": "string", "title": "Term", "maxLength": 200},
                      "ongoing": {"enum": ["Y", "N"], "title": "Ongoing"}},
       "required": ["term"], "x-ecrf": {"summary": ["term", "ongoing"]}}
URL = "/studies/t/subjects/01-001/v1/ks"


@pytest.fixture
def site(tmp_path, load_study, make_user, db, actor, write_study):
    """Study "t" (visit v1: the kitchen sink; log form ev), subjects 01-001 and 02-001, a nurse at
    site 01, a nurse at site 02 and a monitor."""
    load_study(write_study(tmp_path, {"ks": KITCHEN_SINK, "ev": LOG}, log_forms=("ev",)))
    enrol_subject(db, actor, "t", "01")
    enrol_subject(db, actor, "t", "02")
    make_user("nurse", "site_staff", "t", sites=("01",))
    make_user("nurse2", "site_staff", "t", sites=("02",))
    make_user("monitor", "monitor", "t")


class Page(HTMLParser):
    """What a browser makes of a page's first post form: the fields it would send, and every
    control with its id, label and aria-describedby."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.fields, self.controls, self.labels, self.ids = [], [], set(), set()
        self.in_form = self.in_template = False
        self._disabled_depth = []
        self._select = self._textarea = None
        self._depth = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("input", "br", "meta", "link", "img"):
            self._depth += 1
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "template":
            self.in_template = True
        if tag == "form" and a.get("method") == "post" and "data-ecrf-form" in a:
            self.in_form = True
        if tag == "label" and "for" in a and not self.in_template:
            self.labels.add(a["for"])
        if tag == "fieldset" and "disabled" in a:
            self._disabled_depth.append(self._depth)
        if not self.in_form or self.in_template:
            return
        disabled = "disabled" in a or bool(self._disabled_depth)
        if tag == "input":
            kind = a.get("type", "text")
            if kind not in ("hidden", "submit"):
                self.controls.append(a)
            if disabled or kind == "submit":
                return
            if kind in ("radio", "checkbox") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.controls.append(a)
            self._select = (a["name"], disabled, [])
        elif tag == "option" and self._select is not None:
            self._select[2].append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self.controls.append(a)
            self._textarea = (a["name"], disabled, [])

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[2].append(data)

    def handle_endtag(self, tag):
        if tag == "template":
            self.in_template = False
        if tag == "form":
            self.in_form = False
        if tag == "fieldset" and self._disabled_depth and self._disabled_depth[-1] == self._depth:
            self._disabled_depth.pop()
        if tag == "select" and self._select is not None:
            name, disabled, options = self._select
            chosen = [v for v, selected in options if selected] or [options[0][0] if options else ""]
            if not disabled:
                self.fields.append((name, chosen[0]))
            self._select = None
        if tag == "textarea" and self._textarea is not None:
            name, disabled, text = self._textarea
            if not disabled:
                self.fields.append((name, "".join(text).removeprefix("\n")))
            self._textarea = None
        if tag not in ("input", "br", "meta", "link", "img"):
            self._depth -= 1


def _page(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return Page(response.get_data(as_text=True))


def submit(client, path, changes=None, action="draft", page=None, extra=()):
    """Post the page's form as a browser would, with ``changes`` ({name: value or [values]}) typed in."""
    page = page or _page(client, path)
    fields = [(k, v) for k, v in page.fields if k not in (changes or {})]
    for name, value in (changes or {}).items():
        for v in value if isinstance(value, list) else [value]:
            fields.append((name, v))
    fields.append(("ecrf-action", action))
    fields.extend(extra)
    data = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return client.post(path, data=data)


def _record(db, form="ks"):
    db.expire_all()
    return db.scalar(select(FormRecord).where(FormRecord.form_key == form))


def _labelled(page):
    """Controls without a <label for> (radio and check boxes are labelled one by one)."""
    return [c for c in page.controls if c.get("id") not in page.labels]


def test_the_subject_page_lists_visits_forms_and_logs(client, login_as, site):
    login_as("nurse")
    text = client.get("/studies/t/subjects/01-001").get_data(as_text=True)
    assert 'href="/studies/t/subjects/01-001/v1/ks"' in text and "Kitchen sink" in text
    assert 'href="/studies/t/subjects/01-001/log/ev"' in text and "0 entries" in text
    assert "subjects/01-001" in client.get("/studies/t/subjects").get_data(as_text=True)


def test_every_input_has_a_label_and_every_error_is_tied_to_its_input(client, login_as, site):
    login_as("nurse")
    page = _page(client, URL)
    assert page.controls and _labelled(page) == []
    response = submit(client, URL, {"weight": "heavy", "visdat": "", "tubes-0-tube": "", "tubes-0-volume": "3"},
                      action="complete")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    after = Page(text)
    assert _labelled(after) == []
    for error_id in re.findall(r'<ul class="errors" id="([^"]+)"', text):
        assert re.search(rf'aria-describedby="[^"]*\b{re.escape(error_id)}\b', text), error_id
    for anchor in re.findall(r'<li><a href="#([^"]+)">', text):
        assert anchor in after.ids  # each line of the error summary links to its input
    assert 'id="weight-errors"' in text and 'id="tubes-0-tube-errors"' in text and 'id="visdat-errors"' in text


@pytest.mark.parametrize("study", sorted(p.name for p in resource("forms").iterdir() if (p / "study.json").is_file()))
def test_every_reference_form_renders_labelled(study, client, login_as, load_study, make_user, db, actor):
    spec = load_study(study)
    from ecrf.studies import add_site
    if not spec.sites:
        add_site(db, actor, study, "01", "Site one")
    subject = enrol_subject(db, actor, study, spec.sites[0].id if spec.sites else "01").key
    make_user("nurse", "site_staff", study)
    login_as("nurse")
    for form_id in spec.forms:
        if form_id in spec.log_forms:
            path = f"/studies/{study}/subjects/{subject}/log/{form_id}/new"
        else:
            # Visits restricted to an arm exist only for allocated subjects (om-exosome's diary).
            visit = next((v.id for v in spec.visits if form_id in v.forms and not v.arms), None)
            if visit is None:
                continue
            path = f"/studies/{study}/subjects/{subject}/{visit}/{form_id}"
        page = _page(client, path)
        assert _labelled(page) == [], (form_id, _labelled(page)[:3])


def test_drafts_then_complete_through_the_page(client, login_as, site, db):
    login_as("nurse")
    draft = submit(client, URL, {"weight": "70,5", "height": "175"})
    assert draft.status_code == 302 and draft.headers["Location"] == URL
    record = _record(db)
    assert record.status == "draft" and record.data == {"weight": 70.5, "height": 175, "bmi": 23.0,
                                                       "site_code": "S1"}
    refused = submit(client, URL, action="complete")
    assert refused.status_code == 422 and "this field is required" in refused.get_data(as_text=True)
    done = submit(client, URL, {"visdat": "2024-03-15", "smoker": "N"}, action="complete")
    assert done.status_code == 302 and _record(db).status == "complete"
    assert "Saved as complete." in client.get(URL).get_data(as_text=True)


def test_an_unchanged_form_sent_back_changes_nothing(client, login_as, site, db, actor):
    save_form(db, actor, "t", "01-001", "v1", "ks", {
        "visdat": "2024-03-15", "smoker": "Y", "packs": 2, "weight": 70.25, "height": 175,
        "onset": "2023-11", "aware": "2024-03-15T07:30:00Z", "dose_time": "08:00:00+01:00", "grade": 2,
        "route": "iv", "symptoms": ["cough", "pain"], "consent": False, "notes": "two\nlines",
        "code": "AB12", "tubes": [{"tube": "EDTA", "volume": 2.5}, {"tube": "serum"}], "endat": "2024-04-01",
        "outcome": "recovered"}, missing={})
    login_as("nurse")
    record = _record(db)
    version, events = record.version, head(db.connection())
    response = submit(client, URL)
    assert response.status_code == 302
    assert _record(db).version == version and head(db.connection())[0] == events[0]
    assert "Nothing changed" in client.get(URL).get_data(as_text=True)


def test_bad_input_gets_field_messages_keeps_what_was_typed_and_stores_nothing(client, login_as, site, db):
    login_as("nurse")
    before = head(db.connection())
    script = "<script>alert(1)</script>"
    response = submit(client, URL, {"weight": "lots", "code": script, "visdat": "2024-02-30",
                                    "notes": "x" * 300, "grade": "9", "aware": "2024-03-15T25:00",
                                    "not_a_field": "1", "tubes-0-tube": "plasma", "tubes-0-volume": "1e999"})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert script not in text and html.escape(script, quote=True) in text
    assert 'value="lots"' in text and 'value="1e999"' in text and "x" * 300 in text
    for message in ("enter a number, such as 4.5", "is not a valid date", "must have at most 200 characters",
                    "is not one of the allowed choices", "this date or time does not exist",
                    "the number is too large", "does not have the expected form"):
        assert message in text, message
    assert _record(db) is None and head(db.connection()) == before


def test_labels_and_help_from_study_files_are_escaped(tmp_path, client, login_as, load_study, make_user, db, actor,
                                                      write_study):
    evil = "<script>alert('x')</script>"
    schema = {"type": "object", "title": f"Form {evil}", "description": f"<b>{evil}</b>",
              "x-ecrf": {"sections": [{"id": "s", "title": evil, "description": evil}]},
              "properties": {"a": {"type": "string", "title": evil, "description": evil,
                                   "x-ecrf": {"placeholder": f'"{evil}', "unit": evil, "section": "s"}},
                             "b": {"enum": ["x"], "title": "B", "x-ecrf": {"labels": {"x": evil}}}}}
    load_study(write_study(tmp_path, {"f": schema}, study_id="e"))
    enrol_subject(db, actor, "e", "01")
    make_user("nurse", "site_staff", "e")
    login_as("nurse")
    text = client.get("/studies/e/subjects/01-001/v1/f").get_data(as_text=True)
    assert "alert('x')</script>" not in text and "<b>" not in text
    assert text.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 7


def test_changing_saved_data_needs_a_reason_that_reaches_the_audit_log(client, login_as, site, db):
    login_as("nurse")
    submit(client, URL, {"weight": "70"})
    refused = submit(client, URL, {"weight": "72"})
    assert refused.status_code == 422 and "give a reason for the change" in refused.get_data(as_text=True)
    saved = submit(client, URL, {"weight": "72", "ecrf-reason": "Transcription error from source",
                                 "ecrf-reason-text": "source says 72"})
    assert saved.status_code == 302
    reasons = db.scalars(select(audit_event.c.reason).where(audit_event.c.field == "/weight",
                                                            audit_event.c.action == "update")).all()
    assert reasons == ["Transcription error from source: source says 72"]


def test_a_stale_save_shows_both_values_keeps_what_was_typed_and_overwrites_nothing(
        client, login_as, site, db, actor):
    login_as("nurse")
    submit(client, URL, {"weight": "70", "height": "170"})
    old_page = _page(client, URL)
    save_form(db, actor, "t", "01-001", "v1", "ks", {"weight": 75, "height": 170}, reason="Data entry error")
    conflict = submit(client, URL, {"weight": "80", "ecrf-reason": "Data entry error"}, page=old_page)
    assert conflict.status_code == 409
    text = conflict.get_data(as_text=True)
    assert "Someone else saved this form" in text
    assert "Saved meanwhile by someone else: <strong>75 kg</strong>" in text
    assert 'value="80"' in text and "weight-theirs" in text
    assert "height-theirs" not in text  # same on both sides: no conflict shown
    assert _record(db).data["weight"] == 75
    resolved = submit(client, URL, {"ecrf-reason": "Data entry error"}, page=Page(text))
    assert resolved.status_code == 302 and _record(db).data["weight"] == 80


def test_missing_data_flags_through_the_page(client, login_as, site, db):
    login_as("nurse")
    refused = submit(client, URL, {"missing-weight": "not_done"})
    assert refused.status_code == 422 and "give the reason the value is missing" in refused.get_data(as_text=True)
    saved = submit(client, URL, {"missing-weight": "not_done", "missing-weight-reason": "scale broken"})
    assert saved.status_code == 302
    assert _record(db).missing == {"/weight": {"flag": "not_done", "reason": "scale broken"}}
    assert '<option value="not_done" selected>' in client.get(URL).get_data(as_text=True)
    both = submit(client, URL, {"weight": "70", "ecrf-reason": "Other", "ecrf-reason-text": "found"})
    assert both.status_code == 422 and "not both" in both.get_data(as_text=True)


def test_repeating_group_rows_without_script(client, login_as, site, db):
    login_as("nurse")
    page = _page(client, URL)
    assert ("tubes-0-tube", "") in page.fields  # an empty row to type into
    added = submit(client, URL, {"tubes-0-tube": "EDTA", "tubes-0-volume": "2"}, extra=[("ecrf-add", "tubes")])
    assert added.status_code == 200 and "nothing is saved yet" in added.get_data(as_text=True)
    with_row = Page(added.get_data(as_text=True))
    assert ("tubes-1-volume", "") in with_row.fields and _record(db) is None
    response = submit(client, URL, {"tubes-1-volume": "3"}, page=with_row, action="complete")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert 'id="tubes-1-tube-errors"' in text and "Samples, row 2, Tube: this field is required" in text
    saved = submit(client, URL, {"tubes-1-tube": "serum", "tubes-1-volume": "3"}, page=Page(text))
    assert saved.status_code == 302
    assert _record(db).data["tubes"] == [{"tube": "EDTA", "volume": 2}, {"tube": "serum", "volume": 3}]
    assert _record(db).data["total"] == 5
    removed = submit(client, URL, extra=[("ecrf-remove", "tubes-0")])
    assert removed.status_code == 200
    emptied = submit(client, URL, {"tubes-0-tube": "", "tubes-0-volume": "",
                                   "ecrf-reason": "Data entry error"})
    assert emptied.status_code == 302
    assert _record(db).data["tubes"] == [{"tube": "serum", "volume": 3}]


def test_conditional_fields_without_script(client, login_as, site, db):
    login_as("nurse")
    assert re.search(r'id="field-packs"[^>]*hidden', client.get(URL).get_data(as_text=True))
    submit(client, URL, {"smoker": "Y"})
    page = client.get(URL).get_data(as_text=True)
    assert not re.search(r'id="field-packs"[^>]*hidden', page)  # shown once the condition holds
    submit(client, URL, {"packs": "2"})
    assert _record(db).data["packs"] == 2
    # the answer that hides it: the value left in the field is cleared, with the reason given
    cleared = submit(client, URL, {"smoker": "N", "ecrf-reason": "Data entry error"})
    assert cleared.status_code == 302 and "packs" not in _record(db).data
    events = db.execute(select(audit_event.c.action, audit_event.c.reason).where(
        audit_event.c.field == "/packs").order_by(audit_event.c.seq)).all()
    assert [tuple(e) for e in events] == [("create", None), ("clear", "Data entry error")]
    # a new value typed into a field that no longer applies is refused, at that field
    refused = submit(client, URL, {"packs": "3"})
    assert refused.status_code == 422 and "this field does not apply" in refused.get_data(as_text=True)


def test_log_forms_list_and_edit_entries(client, login_as, site, db):
    login_as("nurse")
    listing = "/studies/t/subjects/01-001/log/ev"
    assert "No entries yet." in client.get(listing).get_data(as_text=True)
    created = submit(client, listing + "/new", {"term": "Headache", "ongoing": "Y"})
    assert created.status_code == 302 and created.headers["Location"] == listing + "/1"
    second = submit(client, listing + "/new", {"term": "Rash"})
    assert second.headers["Location"] == listing + "/2"
    text = client.get(listing).get_data(as_text=True)
    assert "Headache" in text and "Rash" in text
    edited = submit(client, listing + "/1", {"term": "Migraine", "ecrf-reason": "New information received"})
    assert edited.status_code == 302 and "Migraine" in client.get(listing).get_data(as_text=True)
    assert client.get(listing + "/9").status_code == 404
    assert client.get("/studies/t/subjects/01-001/log/ks").status_code == 404


def test_site_isolation_and_read_only_roles(client, login_as, site, db, csrf_from):
    login_as("nurse2")
    assert client.get(URL).status_code == 404  # a subject of another site is not found
    assert client.get("/studies/t/subjects/01-001").status_code == 404
    login_as("monitor")
    text = client.get(URL).get_data(as_text=True)
    assert "data-ecrf-form" not in text and "Kitchen sink" in text
    token = csrf_from(client.get(URL))
    assert client.post(URL, data={"csrf_token": token, "weight": "70"}).status_code == 403
    login_as("nurse")
    assert client.get("/studies/t/subjects/01-001/v9/ks").status_code == 404
    assert client.get("/studies/t/subjects/01-001/v1/ev").status_code == 404
    assert client.post(URL, data={"weight": "70"}).status_code == 400  # no CSRF token


def test_the_page_script_is_a_file_and_the_rules_are_data(client, login_as, site):
    login_as("nurse")
    response = client.get(URL)
    text = response.get_data(as_text=True)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<script src="/static/forms.js" defer></script>' in text
    scripts = re.findall(r"<script([^>]*)>", text)
    assert all("src=" in s or 'type="application/json"' in s for s in scripts)
    assert " on" not in "".join(re.findall(r"<(?:input|button|select|form)[^>]*>", text)).replace(" one", "")
    rules = json.loads(html.unescape(re.search(
        r'<script type="application/json" id="ecrf-rules">(.*?)</script>', text, re.S).group(1)))
    assert {r["name"] for r in rules["fields"]} >= {"packs", "bmi", "tubes"}
    with client.get("/static/forms.js") as script:
        assert script.status_code == 200 and b"ecrf-rules" in script.get_data()


# --- generated posts to every reference form ------------------------------------------------------

REFERENCE = sorted(p.name for p in resource("forms").iterdir() if (p / "study.json").is_file())
NASTY = st.sampled_from(["<script>alert(1)</script>", "\x00", "", " ", "1e999", "-1", "abc", "2024-02-30",
                         "99999999999999999999", "Y", "N", "1", "true", "x" * 3000, "😀", "\r\n", "null"])


def _names(layout):
    names = []
    for spec in layout.fields:
        if spec.read_only:
            continue
        if spec.kind == "partial-date":
            names += [f"{spec.attr}-year", f"{spec.attr}-month", f"{spec.attr}-day"]
        elif spec.kind == "group":
            names += [f"{spec.attr}-{i}-{c.attr}" for i in (0, 1, 7) for c in spec.columns]
        else:
            names.append(spec.attr)
        if spec.missing_flags:
            names += [f"missing-{spec.name}", f"missing-{spec.name}-reason"]
    return names + ["ecrf-version", "ecrf-reason", "unknown-field"]


@pytest.mark.parametrize("study", REFERENCE)
def test_generated_posts_never_fail_and_store_nothing_when_refused(
        study, client, login_as, load_study, make_user, db, actor, csrf_from):
    spec = load_study(study)
    from ecrf.studies import add_site
    if not spec.sites:
        add_site(db, actor, study, "01", "Site one")
    subject = enrol_subject(db, actor, study, spec.sites[0].id if spec.sites else "01").key
    make_user("nurse", "site_staff", study)
    login_as("nurse")
    token = csrf_from(client.get(f"/studies/{study}/subjects/{subject}/log/{spec.log_forms[0]}/new")
                      if spec.log_forms else client.get("/"))
    for form_id, form_def in sorted(spec.forms.items()):
        layout = layout_for(form_def)
        if form_id in spec.log_forms:
            path = f"/studies/{study}/subjects/{subject}/log/{form_id}/new"
        else:
            # Visits restricted to an arm exist only for allocated subjects (om-exosome's diary).
            visit = next((v.id for v in spec.visits if form_id in v.forms and not v.arms), None)
            if visit is None:
                continue
            path = f"/studies/{study}/subjects/{subject}/{visit}/{form_id}"
        values = st.one_of(NASTY, st.text(max_size=20))
        posts = st.dictionaries(st.sampled_from(_names(layout)), st.lists(values, min_size=1, max_size=2),
                                max_size=8)

        @settings(max_examples=6, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(post=posts, action=st.sampled_from(["draft", "complete"]))
        def throw(post, action):
            count = db.scalar(select(func.count()).select_from(FormRecord))
            log = head(db.connection())
            response = client.post(path, data=dict(post, csrf_token=token, **{"ecrf-action": action}))
            assert response.status_code in (200, 302, 400, 409, 422), response.get_data(as_text=True)[:2000]
            if response.status_code != 302:
                assert db.scalar(select(func.count()).select_from(FormRecord)) == count
                assert head(db.connection()) == log
            if response.status_code == 422:
                text = response.get_data(as_text=True)
                assert "nothing was saved" in text and "<script>alert(1)" not in text

        throw()


def test_marking_complete_without_changes_says_so(client, login_as, site, db):
    login_as("nurse")
    submit(client, URL, {"visdat": "2024-03-15", "smoker": "N"})
    done = submit(client, URL, action="complete")
    assert done.status_code == 302
    assert "Saved as complete." in client.get(URL).get_data(as_text=True)
    submit(client, URL, action="complete")
    assert "Nothing changed; the form is complete." in client.get(URL).get_data(as_text=True)
    submit(client, URL, {"weight": "160"}, action="complete")
    assert "1 soft check failed" in client.get(URL).get_data(as_text=True)
