"""The one permission table says what the roles of the issue may do, and the command line asks it."""
import click
import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.auth.permissions import (ACTS_AS_USER, CLI_COMMANDS, OPERATOR_ACTIONS, PERMISSIONS, SITE_ACTIONS,
                                   STUDY_WIDE_ACTIONS, require_operator)
from ecrf.errors import PermissionDenied
from ecrf.models import ROLES


def actions_of(role):
    return {action for action, roles in PERMISSIONS.items() if role in roles}


def test_roles_do_what_the_issue_says():
    staff, investigator = actions_of("site_staff"), actions_of("investigator")
    # everything site staff can do, plus sign, and unblind one subject in an emergency
    assert investigator == staff | {"form.sign", "subject.unblind"}
    assert {"form.edit", "subject.enrol", "query.answer"} <= staff and "form.sign" not in staff
    monitor = actions_of("monitor")
    assert {"form.view", "query.raise", "query.close", "form.verify"} <= monitor
    assert not monitor & {"form.edit", "form.sign", "form.lock", "users.manage"}
    dm = actions_of("data_manager")
    assert {"query.raise", "query.close", "form.lock", "study.lock", "export"} <= dm
    assert not dm & {"form.edit", "form.sign", "form.verify"}
    assert actions_of("admin") >= {"study.manage", "users.manage"}
    assert not actions_of("admin") & {"subject.view", "form.view", "form.edit"}
    # The sponsor: SAE reports and study-level counts only, no patient-level data.
    assert actions_of("sponsor") == {"study.view", "counts.view", "sae.view", "sae.receive"}


def test_the_table_is_consistent():
    assert set(SITE_ACTIONS) <= set(PERMISSIONS) and set(STUDY_WIDE_ACTIONS) <= set(PERMISSIONS)
    assert all(roles <= set(ROLES) for roles in PERMISSIONS.values())
    assert OPERATOR_ACTIONS <= set(PERMISSIONS) | {"system.manage", "audit.verify"}
    clinical = {"form.edit", "form.sign", "form.verify", "form.lock", "study.lock", "query.raise",
                "query.answer", "query.close", "subject.enrol"}
    assert not OPERATOR_ACTIONS & clinical


def _commands(group, prefix=""):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


def test_every_command_is_in_the_table():
    from ecrf.cli import main

    commands = set(_commands(main))
    assert commands - set(CLI_COMMANDS) == set(), "add these commands to permissions.CLI_COMMANDS"
    for command in commands - ACTS_AS_USER:
        assert require_operator(command) in OPERATOR_ACTIONS | {None}, command
    # The operator takes no part in the clinical workflow: an SAE report needs a user (--as).
    with pytest.raises(PermissionDenied):
        require_operator("sae report")


def test_a_command_the_table_does_not_allow_is_refused_and_audited(cli, db, monkeypatch, demo):
    from ecrf.auth import permissions

    monkeypatch.setitem(permissions.CLI_COMMANDS, "user list", "form.sign")
    result = cli("user", "list")
    assert result.exit_code == 1 and "may not do this (form.sign)" in result.output
    monkeypatch.delitem(permissions.CLI_COMMANDS, "user list")
    result = cli("user", "list")
    assert result.exit_code == 1 and "not in the permission table" in result.output
    denied = db.execute(select(audit_event.c.reason, audit_event.c.channel).where(
        audit_event.c.action == "permission_denied").order_by(audit_event.c.seq)).all()
    assert [(r.reason, r.channel) for r in denied] == [("form.sign: ecrf user list", "cli"),
                                                        ("user list: ecrf user list", "cli")]
    with pytest.raises(PermissionDenied):
        require_operator("no such command")
