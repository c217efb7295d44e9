"""``ecrf user create|update|deactivate|list`` and ``ecrf role grant|revoke``: every change audited,
users deactivated and never deleted."""
from sqlalchemy import func, select

from audit import audit_event
from ecrf.models import User

PASSWORD = "correct horse battery"


def test_the_account_commands_and_their_audit(cli, db, demo):
    assert cli("user", "create", "kim", "--name", "Kim Jensen", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    assert cli("role", "grant", "kim", "--study", "demo", "--role", "monitor", "--site", "01").exit_code == 0
    assert cli("user", "update", "kim", "--name", "Kim J. Jensen").exit_code == 0
    assert "demo:monitor@01" in cli("user", "list").output
    assert cli("role", "revoke", "kim", "--study", "demo", "--role", "monitor", "--site", "01").exit_code == 0
    assert cli("user", "deactivate", "kim", "--reason", "left").exit_code == 0
    listing = cli("user", "list").output
    assert "kim" in listing and "inactive" in listing
    assert db.scalar(select(func.count()).select_from(User).where(User.username == "kim")) == 1
    events = db.execute(select(audit_event.c.action, audit_event.c.field, audit_event.c.channel)
                        .where(audit_event.c.action.in_(["user_change", "role_change"]))
                        .order_by(audit_event.c.seq)).all()
    assert [(e.action, e.field) for e in events] == [
        ("user_change", "/users/kim/username"), ("user_change", "/users/kim/name"),
        ("role_change", "/users/kim/roles"), ("user_change", "/users/kim/name"),
        ("role_change", "/users/kim/roles"), ("user_change", "/users/kim/active")]
    assert {e.channel for e in events} == {"cli"}
    bad = cli("role", "grant", "kim", "--study", "demo", "--role", "superuser")
    assert bad.exit_code == 1 and "unknown role" in bad.output
