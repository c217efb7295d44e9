"""The audit pages and the export: access through the permission table, escaping, UTC times, the
field-history and as-of links the form pages use, and the download (itself audited)."""
import csv
import io
import json
import re

import pytest
from sqlalchemy import select

from audit import Action, append, audit_event

XSS = '<img src=x onerror="alert(1)">'
BASE = "/studies/audit-trial/audit"


@pytest.fixture
def site(trial, db, actor, make_user):
    trial.enrol("01-001")
    trial.enrol("02-001", site="02")
    trial.save("01-001", "baseline", "vitals", {"sbp": 120, "comment": XSS})
    trial.save("01-001", "baseline", "vitals", {"sbp": 125, "comment": "-1+1"}, reason=f"typo {XSS}")
    trial.save("02-001", "baseline", "vitals", {"sbp": 140})
    append(db.connection(), actor.event(Action.RANDOMIZE, study=trial.key, site="01", subject="01-001",
                                        field="/arm", new="drug"))
    make_user("monitor", "monitor", trial.key)
    make_user("nurse", "site_staff", trial.key, sites=["01"])
    make_user("sponsor", "sponsor", trial.key)
    db.commit()
    return trial


def _record(db, subject):
    return db.scalar(select(audit_event.c.record).where(
        audit_event.c.subject == subject, audit_event.c.form == "vitals", audit_event.c.record.is_not(None)))


def _page(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def test_monitor_reads_the_whole_trail(client, login_as, site):
    login_as("monitor")
    page = _page(client, BASE)
    assert "02-001" in page and "01-001" in page
    # Escaped, never interpreted: in a value and in a reason.
    assert XSS not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "typo &lt;img" in page
    # Times are ISO 8601 UTC with the zone named.
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"[^>]*>'
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</time> UTC", page)
    assert "Time (UTC)" in page
    assert "(blinded)" in page and ">drug<" not in page
    assert "Download CSV" in page


def test_site_staff_see_their_site_only(client, login_as, site):
    login_as("nurse")
    page = _page(client, BASE)
    assert "01-001" in page and "02-001" not in page
    _page(client, f"{BASE}?site=02")  # filtering on a site they cannot see shows nothing of it
    assert "02-001" not in _page(client, f"{BASE}?site=02")


def test_sponsor_and_strangers_are_refused(client, login_as, site, make_user, db):
    assert client.get(BASE).status_code == 302  # not signed in: to the login page
    login_as("sponsor")
    _page(client, BASE, 403)
    _page(client, f"{BASE}/export?format=csv", 403)
    client.post("/logout", data={})
    make_user("stranger")
    db.commit()
    client.get("/")  # fresh session
    login_as("stranger")
    _page(client, BASE, 404)
    _page(client, "/studies/no-such-study/audit", 404)


def test_filters_and_paging_links(client, login_as, site):
    login_as("monitor")
    page = _page(client, f"{BASE}?subject=01-001&form=vitals&field=/sbp")
    assert "02-001" not in page and "<code>/sbp</code>" in page and "/comment" not in page
    assert 'value="01-001"' in page
    _page(client, f"{BASE}?since=not-a-date", 422)
    _page(client, f"{BASE}?before=abc", 422)
    older = _page(client, f"{BASE}?before=3")
    assert "Newer" in older


def test_field_history_page(client, login_as, site, db):
    login_as("monitor")
    record = _record(db, "01-001")
    page = _page(client, f"{BASE}/field?record={record}&field=/sbp")
    assert "Systolic BP" in page and "120" in page and "125" in page and "typo" in page
    comment = _page(client, f"{BASE}/field?record={record}&field=/comment")
    assert XSS not in comment and "&lt;img" in comment and "-1+1" in comment
    login_as("nurse")
    _page(client, f"{BASE}/field?record={_record(db, '02-001')}&field=/sbp", 404)
    _page(client, f"{BASE}/field?record=x&field=/sbp", 422)


def test_record_as_of_page(client, login_as, site, db):
    login_as("monitor")
    record = _record(db, "01-001")
    first = db.execute(select(audit_event.c.ts).where(audit_event.c.record == record)
                       .order_by(audit_event.c.seq)).scalars().first()
    then = _page(client, f"{BASE}/record/{record}?at={first}")
    assert "&lt;img" in then and "120" in then and "125" not in then and "draft" in then
    now = _page(client, f"{BASE}/record/{record}")
    assert "125" in now
    assert "not been started" in _page(client, f"{BASE}/record/{record}?at=2000-01-01T00:00:00Z")
    _page(client, f"{BASE}/record/{record}?at=soon", 422)
    _page(client, f"{BASE}/record/999999", 404)


def test_download_is_audited_and_safe_for_spreadsheets(client, login_as, site, db):
    login_as("monitor")
    response = client.get(f"{BASE}/export?format=csv&subject=01-001")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows and {r["subject"] for r in rows} == {"01-001"}
    assert "'-1+1" in {r["new_value"] for r in rows}
    assert {r["new_value"] for r in rows if r["action"] == "randomize"} == {"(blinded)"}
    export = db.execute(select(audit_event).order_by(audit_event.c.seq.desc()).limit(1)).one()
    assert (export.action, export.actor_name, export.actor_role, export.channel) == \
        ("export", "monitor", "monitor", "page")
    assert json.loads(export.new_value)["filters"] == {"subject": "01-001"}
    jsonl = client.get(f"{BASE}/export?format=jsonl")
    assert jsonl.status_code == 200 and all(json.loads(line) for line in jsonl.get_data(as_text=True).splitlines())
    _page(client, f"{BASE}/export?format=xlsx", 422)


def test_cli_export(cli, site, tmp_path, db):
    target = tmp_path / "trail.csv"
    result = cli("audit", "export", "--study", "audit-trial", "--format", "csv", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert re.match(r"\d+ events of audit-trial \(through event \d+\) written to ", result.output)
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert rows[0][0] == "seq" and "(blinded)" in {c for row in rows for c in row}
    assert not any(c.startswith(("=", "+", "-", "@")) for row in rows for c in row)
    export = db.execute(select(audit_event).order_by(audit_event.c.seq.desc()).limit(1)).one()
    assert export.action == "export" and export.channel == "cli"

    unblinded = tmp_path / "trail.jsonl"
    assert cli("audit", "export", "--study", "audit-trial", "--format", "jsonl", "-o", str(unblinded),
               "--unblinded").exit_code == 0
    lines = [json.loads(line) for line in unblinded.read_text().splitlines()]
    assert json.loads(next(x for x in lines if x["action"] == "randomize")["new_value"]) == "drug"
    assert not list(tmp_path.glob("*.partial"))

    missing = cli("audit", "export", "--study", "nope", "--format", "csv", "-o", str(tmp_path / "x.csv"))
    assert missing.exit_code == 1 and "no study" in missing.output and not (tmp_path / "x.csv").exists()


def test_cli_exports_the_account_events(cli, site, tmp_path, db):
    from ecrf.actor import Actor
    from ecrf.auth.login import authenticate

    authenticate(db, "ghost", "no such user", Actor.system().context)
    target = tmp_path / "accounts.jsonl"
    result = cli("audit", "export", "--accounts", "--format", "jsonl", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert "events of no study (accounts)" in result.output
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines and all(line["study"] is None for line in lines)
    assert any(line["action"] == "login_failed" and line["actor_name"] == "ghost" for line in lines)
    for wrong in ([], ["--study", "audit-trial", "--accounts"]):
        refused = cli("audit", "export", *wrong, "--format", "csv", "-o", str(tmp_path / "x.csv"))
        assert refused.exit_code == 1 and "either --study" in refused.output
