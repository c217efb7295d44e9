"""An administrator manages the system and accounts, not patients: the audit pages, their API and
their download show an admin the study's configuration events but no event about a subject or a form
record (no dates of birth, no narratives), while a monitor still reads them all."""
import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.auth import accounts
from ecrf.errors import NotFound

SECRET = "Patient fell from ladder at home"
BASE = "/studies/audit-trial/audit"


@pytest.fixture
def site(trial, db, actor, make_user):
    from ecrf.studies import add_site

    trial.enrol("01-001")
    trial.save("01-001", "baseline", "vitals", {"sbp": 121, "comment": SECRET})
    add_site(db, actor, trial.key, "77", "Late site")  # a configuration event of the study
    make_user("boss", "admin", trial.key)
    make_user("monitor", "monitor", trial.key)
    make_user("both", "admin", trial.key)
    accounts.grant_role(db, actor, "both", trial.key, "site_staff", ["02"])
    return trial


def _record(db):
    return db.scalar(select(audit_event.c.record).where(audit_event.c.record.is_not(None)))


def _api(client, db, actor, username):
    token = accounts.create_token(db, actor, username)
    answer = client.get(f"/api/v1{BASE}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    return answer.get_json()["events"]


def test_admin_reads_configuration_events_but_no_clinical_value(client, login_as, site, db, actor):
    login_as("boss")
    page = client.get(BASE).get_data(as_text=True)
    assert "Late site" in page or "77" in page
    assert SECRET not in page and "01-001" not in page
    download = client.get(f"{BASE}/export?format=csv").get_data(as_text=True)
    assert SECRET not in download and "01-001" not in download and "site_change" in download
    jsonl = client.get(f"{BASE}/export?format=jsonl").get_data(as_text=True)
    assert SECRET not in jsonl and "01-001" not in jsonl
    record = _record(db)
    assert client.get(f"{BASE}/record/{record}").status_code == 404
    assert client.get(f"{BASE}/field?record={record}&field=/comment").status_code == 404
    events = _api(client, db, actor, "boss")
    assert events and all(e["subject"] is None and e["record"] is None for e in events)
    assert SECRET not in str(events)


def test_monitor_still_reads_every_value(client, login_as, site, db, actor):
    login_as("monitor")
    assert SECRET in client.get(BASE).get_data(as_text=True)
    assert SECRET in client.get(f"{BASE}/export?format=csv").get_data(as_text=True)
    assert SECRET in client.get(f"{BASE}/record/{_record(db)}").get_data(as_text=True)
    assert SECRET in str(_api(client, db, actor, "monitor"))


def test_an_admin_who_is_also_site_staff_reads_data_of_their_site_only(site, db, actor):
    from ecrf import audit_view
    from ecrf.models import User
    from ecrf.studies import get_study

    both = db.scalar(select(User).where(User.username == "both"))
    scope = audit_view.scope_for(db, both, get_study(db, site.key))
    assert scope.site_keys is None and scope.data_site_keys == frozenset({"02"})
    events = audit_view.query_events(db, scope).events
    assert events and all(e.subject is None for e in events)
    with pytest.raises(NotFound):
        audit_view.record_as_of(db, _record(db), scope=scope)
