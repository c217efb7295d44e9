"""A tiny, made-up MedDRA ASCII release (invented codes and names, no real MedDRA content)."""
import pytest

#: file -> lines, in the distribution's layout ($-separated, a trailing $).
FAKE_RELEASE = {
    "meddra_release.asc": ["99.1$English$$$$"],
    "soc.asc": ["90000001$Zorblax disorders$ZORB$$$$$$$"],
    "hlgt.asc": ["90000101$Zorblax group terms$$$$$$$"],
    "hlt.asc": ["90000201$Zorblax high level terms$$$$$$$"],
    "pt.asc": ["90001001$Zorbitis$$90000001$$$$$$$$", "90001002$Quuxalgia$$90000001$$$$$$$$"],
    "soc_hlgt.asc": ["90000001$90000101$"],
    "hlgt_hlt.asc": ["90000101$90000201$"],
    "hlt_pt.asc": ["90000201$90001001$", "90000201$90001002$"],
    "mdhier.asc": [
        "90001001$90000201$90000101$90000001$Zorbitis$Zorblax high level terms$Zorblax group terms$"
        "Zorblax disorders$ZORB$$90000001$Y$",
        "90001002$90000201$90000101$90000001$Quuxalgia$Zorblax high level terms$Zorblax group terms$"
        "Zorblax disorders$ZORB$$90000001$Y$",
    ],
    "llt.asc": [
        "90001001$Zorbitis$90001001$$$$$$$Y$$",
        "90001011$Acute zorbitis$90001001$$$$$$$Y$$",
        "90001012$Zorbitis of the quux$90001001$$$$$$$N$$",
        "90001002$Quuxalgia$90001002$$$$$$$Y$$",
    ],
}


@pytest.fixture
def fake_release(tmp_path):
    """Factory: write the fake release (with ``changes``: file -> lines, or None to leave it out)
    to a new folder and return the folder."""
    count = 0

    def make(**changes):
        nonlocal count
        count += 1
        folder = tmp_path / f"release-{count}"
        folder.mkdir()
        files = {**FAKE_RELEASE, **{name.replace("_asc", ".asc"): lines for name, lines in changes.items()}}
        for name, lines in files.items():
            if lines is not None:
                (folder / name).write_text("".join(f"{line}\r\n" for line in lines), encoding="utf-8")
        return folder

    return make


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """An empty instance folder, also the one ``ecrf`` commands use."""
    folder = tmp_path / "instance"
    folder.mkdir()
    monkeypatch.setenv("ECRF_INSTANCE_PATH", str(folder))
    return folder
