"""The command-line contract: each command's output and exit code, through the real services."""
import json
import shutil

from sqlalchemy import select

from ecrf.models import Site, Study, StudyVersion, User

DEMO = None


def _copy_demo(tmp_path):
    from ecrf.paths import resource

    target = tmp_path / "demo"
    shutil.copytree(resource("forms") / "demo", target)
    return target


def test_study_validate_accepts_the_demo_and_names_file_pointer_problem(cli, tmp_path):
    folder = _copy_demo(tmp_path)
    assert cli("study", "validate", str(folder)).exit_code == 0
    vitals = json.loads((folder / "vitals.json").read_text())
    vitals["properties"]["sbp"]["minimum"] = "fifty"
    (folder / "vitals.json").write_text(json.dumps(vitals))
    result = cli("study", "validate", str(folder))
    assert result.exit_code == 1
    assert "vitals.json: /properties/sbp/minimum: 'fifty' is not of type 'number'" in result.output
    assert "Traceback" not in result.output


def test_study_load_is_versioned_by_content(cli, db, tmp_path):
    folder = _copy_demo(tmp_path)
    first = cli("study", "load", str(folder))
    assert first.exit_code == 0, first.output
    assert "loaded as version 1" in first.output
    again = cli("study", "load", str(folder))
    assert "unchanged, still version 1" in again.output
    study = json.loads((folder / "study.json").read_text())
    study["visits"][1]["window_after"] = 5
    (folder / "study.json").write_text(json.dumps(study))
    diff = cli("study", "diff", str(folder))
    assert "visit 'week4': window_after 3 -> 5" in diff.output
    assert "loaded as version 2" in cli("study", "load", str(folder)).output
    versions = db.scalars(select(StudyVersion.number).join(Study).where(Study.key == "demo")).all()
    assert sorted(versions) == [1, 2]
    listing = cli("study", "list").output
    assert "version 1" in listing and "version 2" in listing


def test_study_diff_describes_fields_added_retyped_and_code_lists(cli, tmp_path):
    folder = _copy_demo(tmp_path)
    cli("study", "load", str(folder))
    vitals = json.loads((folder / "vitals.json").read_text())
    vitals["properties"]["sbp"]["type"] = "number"
    vitals["properties"]["position"] = {"enum": ["sitting", "supine"], "title": "Position"}
    (folder / "vitals.json").write_text(json.dumps(vitals))
    out = cli("study", "diff", str(folder)).output
    assert "form 'vitals': field 'position' added" in out
    assert "form 'vitals': field 'sbp' retyped from integer to number" in out


def test_a_broken_study_is_not_loaded_at_all(cli, db, tmp_path):
    folder = _copy_demo(tmp_path)
    (folder / "vitals.json").write_text("{not json")
    result = cli("study", "load", str(folder))
    assert result.exit_code == 1
    assert "invalid JSON at line 1, column 2" in result.output
    assert db.scalar(select(Study).where(Study.key == "demo")) is None


def test_sites_users_roles_and_tokens(cli, db, tmp_path):
    cli("study", "load", str(_copy_demo(tmp_path)))
    assert cli("site", "add", "demo", "01", "--name", "Odense").exit_code == 0
    duplicate = cli("site", "add", "demo", "01", "--name", "Again")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    created = cli("user", "create", "nurse", "--name", "Nina Nurse", "--password-stdin",
                  input="a sound passphrase\n")
    assert created.exit_code == 0, created.output
    user = db.scalar(select(User).where(User.username == "nurse"))
    assert user.must_change_password is False and "a sound" not in user.password_hash
    weak = cli("user", "create", "weak", "--password-stdin", input="password\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
    assert cli("role", "grant", "nurse", "--study", "demo", "--role", "site_staff",
               "--site", "01").exit_code == 0
    bad_role = cli("role", "grant", "nurse", "--study", "demo", "--role", "wizard")
    assert bad_role.exit_code == 1 and "unknown role" in bad_role.output
    assert "demo:site_staff@01" in cli("user", "list").output
    token = cli("token", "create", "nurse")
    assert token.exit_code == 0 and token.output.strip().splitlines()[-1].startswith("ecrf_")
    assert "1 token(s)" in cli("token", "revoke", "nurse").output
    assert cli("role", "revoke", "nurse", "--study", "demo", "--role", "site_staff",
               "--site", "01").exit_code == 0
    assert cli("user", "deactivate", "nurse").exit_code == 0
    assert "inactive" in cli("user", "list").output
    assert db.scalar(select(Site).where(Site.key == "01")).name == "Odense"


def test_user_errors_are_one_line_with_exit_code_1(cli):
    for args in (("site", "add", "nostudy", "01", "--name", "X"),
                 ("role", "grant", "ghost", "--study", "x", "--role", "monitor"),
                 ("token", "create", "ghost"),
                 ("study", "load", "/no/such/folder")):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert result.output.startswith("Error:") or ": no such file" in result.output
        assert "Traceback" not in result.output


def test_every_command_documents_itself(cli):
    for args in (["--help"], ["demo", "--help"], ["study", "validate", "--help"], ["role", "grant", "--help"],
                 ["user", "create", "--help"], ["token", "create", "--help"], ["serve", "--help"],
                 ["audit", "verify", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_audit_verify_and_checkpoint(cli, tmp_path):
    cli("study", "load", str(_copy_demo(tmp_path)))
    checkpoint = cli("audit", "checkpoint").output.strip()
    seq, digest = checkpoint.split(":")
    assert int(seq) >= 1 and len(digest) == 64
    ok = cli("audit", "verify", "--against", checkpoint)
    assert ok.exit_code == 0 and "audit log intact" in ok.output
    wrong = cli("audit", "verify", "--against", f"{seq}:{'0' * 64}")
    assert wrong.exit_code == 1


def test_study_diff_names_code_list_changes(cli, tmp_path):
    folder = _copy_demo(tmp_path)
    vitals = json.loads((folder / "vitals.json").read_text())
    vitals["properties"]["position"] = {"enum": ["sitting", "supine"], "title": "Position"}
    (folder / "vitals.json").write_text(json.dumps(vitals))
    cli("study", "load", str(folder))
    vitals["properties"]["position"]["enum"] = ["sitting", "standing"]
    (folder / "vitals.json").write_text(json.dumps(vitals))
    out = cli("study", "diff", str(folder)).output
    assert "form 'vitals': field 'position' code list changed (added standing; removed supine)" in out
