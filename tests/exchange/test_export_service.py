"""The export service: roles and sites as on the pages, the one blinding check, refusals, write
errors that leave nothing behind, and one snapshot whatever is saved meanwhile."""
import json
import resource
import signal

import pytest
from sqlalchemy import func, select

from audit import audit_event
from ecrf.auth.permissions import NotVisible
from ecrf.errors import Conflict, NotFound, PermissionDenied
from ecrf.exchange.export_service import ExportFailed, operator_scope, run_export, scope_for
from tests.exchange.conftest import ARMS, fill, write_study
from tests.exchange.test_export_csv import read


def everything(folder):
    if folder.is_file():
        return folder.read_bytes().decode("utf-8")
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize("fmt", ["csv", "csv-long", "odm", "dataset-json", "ndjson"])
def test_a_blinded_export_never_holds_an_arm(xs, export, fmt):
    result, out = export(fmt, **({"audit": True, "signatures": True} if fmt == "odm" else {}))
    text = everything(out)
    assert not any(arm in text for arm in ARMS)


def test_unblinded_exports_say_so_and_hold_the_arms(xs, export):
    _, out = export("csv", unblinded=True)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["blinding"].startswith("unblinded")
    assert ARMS[0] in (out / "subjects.csv").read_text(encoding="utf-8-sig")


def test_roles_and_sites_limit_what_is_exported(xs, db, make_user):
    from ecrf.randomization import can_see_arm
    from ecrf.studies import get_study

    manager = make_user("dm01", "data_manager", "xs", sites=["01"])
    scope = scope_for(db, manager, "xs")
    assert scope.site_keys == ("01",) and scope.role == "data_manager"
    assert scope.arm_visible is can_see_arm(db, manager, get_study(db, "xs")) is False
    with pytest.raises(NotVisible):
        scope_for(db, manager, "xs", sites=["02"])
    with pytest.raises(PermissionDenied):
        scope_for(db, make_user("mon", "monitor", "xs"), "xs")
    with pytest.raises(NotFound):
        scope_for(db, make_user("nobody"), "xs")


def test_a_site_limited_export_holds_only_that_sites_subjects(xs, db, actor, make_user, tmp_path):
    manager = make_user("dm01", "data_manager", "xs", sites=["01"])
    result = run_export(db, actor, scope_for(db, manager, "xs"), "csv", tmp_path / "o")
    text = everything(tmp_path / "o")
    assert xs.one in text and xs.two not in text
    assert result.rows["dm"] == 1


def test_unknown_study_form_or_site_is_refused(xs, db):
    with pytest.raises(NotFound, match="no study"):
        operator_scope(db, "nope")
    with pytest.raises(NotFound, match="no form 'zz'"):
        operator_scope(db, "xs", forms=("zz",))
    with pytest.raises(NotFound, match="no site '09'"):
        operator_scope(db, "xs", sites=("09",))


def _exports(db):
    return db.scalar(select(func.count()).select_from(audit_event).where(audit_event.c.action == "export"))


def test_an_output_that_is_not_empty_is_refused_unless_forced(xs, db, actor, tmp_path):
    target = tmp_path / "full"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    scope = operator_scope(db, "xs")
    with pytest.raises(Conflict, match="not empty; use --force"):
        run_export(db, actor, scope, "csv", target)
    assert (target / "keep.txt").exists()
    run_export(db, actor, scope, "csv", target, force=True)
    assert not (target / "keep.txt").exists() and (target / "dm.csv").exists()


@pytest.mark.parametrize("fmt", ["csv", "odm"])
def test_a_write_error_removes_the_partial_output_and_records_nothing(xs, db, actor, tmp_path, fmt):
    """A file size limit makes the disk refuse like a full one (EFBIG instead of ENOSPC)."""
    scope = operator_scope(db, "xs")
    before = _exports(db)
    target = tmp_path / ("o.xml" if fmt == "odm" else "o")
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (600, hard))
    try:
        with pytest.raises(ExportFailed, match="disk is full.*nothing was recorded"):
            run_export(db, actor, scope, fmt, target)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forms"]
    assert _exports(db) == before


def test_an_export_reads_one_snapshot(new_database, tmp_path, backend):
    """A save committed while the export runs is not seen: every table is as it was at the start."""
    from ecrf.actor import Actor
    from ecrf.capture.service import save_form
    from ecrf.db import Database
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study

    database = Database(new_database())
    actor = Actor.cli()
    setup = database.sessions()
    publish_study(setup, actor, load_study(write_study(tmp_path / "forms")))
    one, two = fill(setup, actor)
    setup.close()
    saved = []

    def save_meanwhile(_n):
        if not saved:
            writer = database.sessions()
            save_form(writer, actor, "xs", two, "v1", "dm", {"sex": "F", "grade": 1}, reason="correction")
            save_form(writer, actor, "xs", one, "v1", "ex", {"doses": [{"dose": 99}]}, reason="correction")
            writer.close()
            saved.append(True)

    session = database.sessions()
    result = run_export(session, actor, operator_scope(session, "xs"), "csv", tmp_path / "o",
                        progress=save_meanwhile)
    session.close()
    database.engine.dispose()
    assert saved and result.rows["ex__doses"] == 2
    doses = read(tmp_path / "o" / "ex__doses.csv")
    assert [d["dose"] for d in doses] == ["2.5", "5"]
    dm = {row["subject"]: row for row in read(tmp_path / "o" / "dm.csv")}
    assert (dm[two]["sex"], dm[two]["grade"]) == ("M", "3")


def test_the_command_line_exports_and_refuses_with_one_line(xs, cli, tmp_path):
    out = tmp_path / "cli"
    result = cli("export", "csv", "--study", "xs", "--forms", "dm,ae", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "csv export of xs: 6 rows in 3 table(s)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["ae.csv", "dictionary.csv", "dm.csv", "manifest.json",
                                                     "subjects.csv"]
    again = cli("export", "csv", "--study", "xs", "-o", str(out))
    assert again.exit_code == 1 and "not empty; use --force" in again.output
    assert cli("export", "odm", "--study", "nope", "-o", str(tmp_path / "x.xml")).output.strip() \
        == "Error: no study 'nope'"
    odm = cli("export", "odm", "--study", "xs", "--audit", "--signatures", "-o", str(tmp_path / "x.xml"))
    assert odm.exit_code == 0 and (tmp_path / "x.xml").read_text(encoding="utf-8").startswith("<?xml")


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(monkeypatch, capsys, terminal):
    import sys

    from ecrf.exchange import export_commands

    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    with export_commands.progress("export csv of xs", 25_000) as step:
        for _ in range(25_000):
            step(1)
    err = capsys.readouterr().err
    if terminal:
        assert "export csv of xs" in err and "25000/25000" in err
    else:
        assert err.splitlines() == ["export csv of xs: 10000 records", "export csv of xs: 20000 records"]
