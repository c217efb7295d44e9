"""The data import page: upload, the dry run's differences, confirm; refused files list every
problem; only roles with data.import reach it."""
import io
import re

from sqlalchemy import func, select

from audit import audit_event
from ecrf.models import FormRecord

AE = {"type": "object", "title": "Events",
      "properties": {"term": {"type": "string", "maxLength": 200}, "grade": {"enum": [1, 2, 3]}},
      "required": ["term"]}
VS = {"type": "object", "title": "Vitals", "properties": {"sbp": {"type": "integer", "maximum": 260}}}
CSV = "subject,site,visit,sbp\n01-001,01,v1,120\n01-002,01,v1,130\n"


def setup(db, tmp_path, write_study, load_study, make_user):
    load_study(write_study(tmp_path / "defs", {"vs": VS, "ae": AE}, study_id="pg", log_forms=("ae",)))
    make_user("dm", "data_manager", "pg")
    make_user("nurse", "site_staff", "pg")


def upload(client, csrf, text, **extra):
    page = client.get("/studies/pg/import")
    data = {"csrf_token": csrf(page), "form": "vs", "reason": "", "preview": "1",
            "file": (io.BytesIO(text.encode("utf-8") if isinstance(text, str) else text), "rows.csv")}
    return client.post("/studies/pg/import", data=data | extra, content_type="multipart/form-data")


def test_upload_preview_then_confirm(db, tmp_path, write_study, load_study, make_user, client, login_as,
                                     csrf_from):
    setup(db, tmp_path, write_study, load_study, make_user)
    login_as("dm")
    assert "Import data" in client.get("/studies/pg").get_data(as_text=True)
    preview = upload(client, csrf_from, CSV)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "2 created, 0 changed, 0 unchanged" in " ".join(html.split())
    assert "<code>/sbp</code>: (empty) → 120" in html
    assert db.scalar(select(func.count()).select_from(FormRecord)) == 0  # nothing written yet
    text = re.search(r'name="text" type="hidden" value="([^"]*)"', html)
    digest = re.search(r'name="digest" type="hidden" value="([^"]*)"', html).group(1)
    confirm = client.post("/studies/pg/import", data={
        "csrf_token": csrf_from(preview), "form": "vs", "reason": "", "confirm": "1",
        "text": text.group(1), "digest": digest})
    assert confirm.status_code == 302, confirm.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(FormRecord)) == 2
    channels = {c for (c,) in db.execute(select(audit_event.c.channel).where(
        audit_event.c.actor_name == "dm", audit_event.c.subject.is_not(None)))}
    assert channels == {"import"}


def test_a_bad_file_lists_every_problem_and_writes_nothing(db, tmp_path, write_study, load_study,
                                                          make_user, client, login_as, csrf_from):
    setup(db, tmp_path, write_study, load_study, make_user)
    login_as("dm")
    bad = upload(client, csrf_from, "subject,site,visit,sbp\n01-001,01,v1,999\n01-002,01,v1,abc\n")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "row 2: /sbp: must be at most 260" in html
    assert "row 3: /sbp: &#39;abc&#39; is not a whole number" in html
    latin = upload(client, csrf_from, "subject,site,visit,sbp\nø,01,v1,1\n".encode("latin-1"))
    assert latin.status_code == 422 and "not UTF-8" in latin.get_data(as_text=True)
    forged = client.post("/studies/pg/import", data={
        "csrf_token": csrf_from(bad), "form": "vs", "confirm": "1", "text": CSV, "digest": "0" * 64})
    assert forged.status_code == 422 and "choose a CSV file" in forged.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(FormRecord)) == 0


def test_site_staff_may_not_import(db, tmp_path, write_study, load_study, make_user, client, login_as):
    setup(db, tmp_path, write_study, load_study, make_user)
    login_as("nurse")
    assert "Import data" not in client.get("/studies/pg").get_data(as_text=True)
    assert client.get("/studies/pg/import").status_code == 403
