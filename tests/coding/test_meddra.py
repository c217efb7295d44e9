"""Importing a licensed MedDRA ASCII release (a made-up one here) and searching it."""
import json

import pytest

from ecrf.coding import meddra
from ecrf.errors import Conflict, NotFound


def test_import_stores_one_json_file_per_version_and_search_finds_terms(fake_release, instance):
    dictionary = meddra.import_release(instance, fake_release())
    assert (dictionary.version, dictionary.language, len(dictionary.terms)) == ("99.1", "English", 4)
    stored = instance / "meddra" / "99.1" / "dictionary.json"
    assert json.loads(stored.read_text())["version"] == "99.1"
    assert [p.name for p in stored.parent.iterdir()] == ["dictionary.json"]
    assert meddra.versions(instance) == ["99.1"]

    found = meddra.search(instance, "zorbit")
    # Prefix of the LLT name first; the non-current LLT is not offered.
    assert [t.llt_name for t in found] == ["Zorbitis", "Acute zorbitis"]
    # Through the SOC too, after the names.
    assert [t.llt_name for t in meddra.search(instance, "zorb")] == ["Zorbitis", "Acute zorbitis", "Quuxalgia"]
    acute = found[1]
    assert (acute.llt_code, acute.pt_code, acute.pt_name, acute.soc_name) == (
        "90001011", "90001001", "Zorbitis", "Zorblax disorders")
    assert [t.llt_name for t in meddra.search(instance, "90001002")] == ["Quuxalgia"]
    assert [t.llt_name for t in meddra.search(instance, "zorblax quux")] == ["Quuxalgia"]  # by SOC
    loaded = meddra.load(instance)
    assert loaded.term("90001012").current is False
    with pytest.raises(NotFound):
        loaded.term("1")


def test_a_version_is_imported_once(fake_release, instance):
    meddra.import_release(instance, fake_release())
    with pytest.raises(Conflict, match="already imported"):
        meddra.import_release(instance, fake_release())


def test_nothing_imported_yet(instance):
    assert meddra.versions(instance) == []
    with pytest.raises(NotFound, match="no MedDRA release is imported"):
        meddra.search(instance, "zorb")
    with pytest.raises(NotFound, match="27.0 is not imported"):
        meddra.load(instance, "27.0")


@pytest.mark.parametrize(("changes", "message"), [
    ({"mdhier_asc": None}, "missing mdhier.asc"),
    ({"llt_asc": None, "soc_asc": None}, "missing llt.asc, soc.asc"),
    ({"llt_asc": ["90001001$Zorbitis$90001001$$$$$$$Y$$", "90001011$Acute zorbitis$"]},
     "llt.asc line 2: expected at least 10 $-separated fields, found 2"),
    ({"llt_asc": ["zorb$Zorbitis$90001001$$$$$$$Y$$"]}, "llt.asc line 1: field 1 must be a numeric code"),
    ({"llt_asc": ["90001001$Zorbitis$90001001$$$$$$$maybe$$"]}, "llt.asc line 1: llt_currency must be Y or N"),
    ({"llt_asc": ["90001001$Zorbitis$90009999$$$$$$$Y$$"]}, "llt.asc line 1: PT 90009999 has no primary path"),
    ({"llt_asc": ["90001001$Zorbitis$90001001$$$$$$$Y$$"] * 2}, "llt.asc line 2: LLT 90001001 appears twice"),
    ({"llt_asc": []}, "llt.asc: no terms"),
    ({"pt_asc": ["90001001$Zorbitis$$90000001$$$$$$$$", "x$y$"]}, "pt.asc line 2: field 1 must be a numeric code"),
    ({"mdhier_asc": ["90001001$90000201$90000101$90000001$Zorbitis$h$g$s$ZORB$$90000001$?$"]},
     "mdhier.asc line 1: primary_soc_fg must be Y or N"),
    ({"meddra_release_asc": ["../../etc$English$"]}, "is not a version"),
])
def test_a_malformed_release_is_refused_with_file_and_line(fake_release, instance, changes, message):
    with pytest.raises(meddra.BadRelease) as caught:
        meddra.import_release(instance, fake_release(**changes))
    assert message in str(caught.value)
    assert meddra.versions(instance) == []
    assert not (instance / "meddra").exists()


def test_not_utf8_and_not_a_folder(fake_release, instance, tmp_path):
    folder = fake_release()
    (folder / "llt.asc").write_bytes(b"90001001$Zorb\xe9tis$90001001$$$$$$$Y$$\n")
    with pytest.raises(meddra.BadRelease, match="llt.asc: not UTF-8"):
        meddra.read_release(folder)
    with pytest.raises(meddra.BadRelease, match="is not a folder"):
        meddra.read_release(tmp_path / "nowhere")


def test_a_damaged_stored_dictionary_is_refused(fake_release, instance):
    meddra.import_release(instance, fake_release())
    (instance / "meddra" / "99.1" / "dictionary.json").write_text('{"format": 1, "terms": 3}')
    with pytest.raises(meddra.BadRelease, match="damaged"):
        meddra.load(instance)
