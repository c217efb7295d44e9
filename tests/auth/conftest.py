"""The demo study with two sites, for the account, login and permission tests."""
import pytest


@pytest.fixture
def demo(db, actor, load_study):
    from ecrf.studies import add_site

    load_study("demo")
    add_site(db, actor, "demo", "01", "Odense")
    add_site(db, actor, "demo", "02", "Aarhus")
    return "demo"


@pytest.fixture
def other_study(db, actor, load_study, tmp_path):
    """A second study, ``other``, with one site: a copy of the demo under another id."""
    import shutil

    from ecrf.paths import resource
    from ecrf.studies import add_site

    folder = tmp_path / "other"
    shutil.copytree(resource("forms") / "demo", folder)
    (folder / "study.json").write_text((folder / "study.json").read_text().replace('"demo"', '"other"'))
    load_study(folder)
    add_site(db, actor, "other", "01", "Elsewhere")
    return "other"
