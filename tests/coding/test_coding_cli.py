"""``ecrf coding search`` and ``ecrf coding import-meddra``: output and exit codes."""
from ecrf.auth.permissions import CLI_COMMANDS


def test_both_commands_are_in_the_permission_table():
    assert CLI_COMMANDS["coding search"] is None
    assert CLI_COMMANDS["coding import-meddra"] == "system.manage"


def test_search_ctcae(cli):
    result = cli("coding", "search", "dry mouth")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["10013781\tDry mouth\tGastrointestinal disorders\tgrades 1,2,3"]
    result = cli("coding", "search", "mucositis", "--limit", "1")
    assert result.output.startswith("10028130\tMucositis oral\t") and len(result.output.splitlines()) == 1
    assert cli("coding", "search", "zorblax").output == ""


def test_import_meddra_then_search_it(cli, fake_release, instance):
    result = cli("coding", "import-meddra", str(fake_release()))
    assert result.exit_code == 0, result.output
    assert result.output == "MedDRA 99.1 (English): 4 LLTs imported\n"
    assert (instance / "meddra" / "99.1" / "dictionary.json").is_file()
    result = cli("coding", "search", "quux", "--dictionary", "meddra")
    assert result.exit_code == 0, result.output
    assert result.output == "90001002\tQuuxalgia\tPT 90001002 Quuxalgia\tZorblax disorders\n"


def test_errors_are_one_line_with_exit_code_1(cli, fake_release, instance):
    result = cli("coding", "search", "zorb", "--dictionary", "meddra")
    assert (result.exit_code, result.output) == (
        1, "Error: no MedDRA release is imported (ecrf coding import-meddra DIR)\n")
    result = cli("coding", "import-meddra", str(fake_release(llt_asc=["90001001$Zorbitis$"])))
    assert result.exit_code == 1
    assert result.output == ("Error: llt.asc line 1: expected at least 10 $-separated fields, found 2\n")
    folder = fake_release()
    assert cli("coding", "import-meddra", str(folder)).exit_code == 0
    result = cli("coding", "import-meddra", str(folder))
    assert result.exit_code == 1 and "already imported" in result.output
    assert cli("coding", "search", "x", "--dictionary", "who").exit_code == 2  # click's usage error
