"""Exports from the page and the API: the permission table, the user's sites, blinding, the
streamed download, and the OpenAPI document."""
import io
import json
import zipfile

import pytest

from ecrf.auth.accounts import create_token
from tests.exchange.conftest import ARMS


@pytest.fixture
def manager(xs, make_user, login_as):
    make_user("dm01", "data_manager", "xs", sites=["01"])
    login_as("dm01")
    return xs


def test_the_page_offers_the_users_sites_and_the_forms(manager, client):
    page = client.get("/studies/xs/export").get_data(as_text=True)
    assert 'value="01"' in page and 'value="02"' not in page
    assert 'value="dm"' in page and "Blinded: the export holds no arm" in page
    assert "Export data" in client.get("/studies/xs").get_data(as_text=True)


def test_the_download_is_a_zip_of_the_users_sites_only(manager, client):
    response = client.get("/studies/xs/export/download?format=csv&form=dm")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    names = sorted(n.split("/", 1)[1] for n in archive.namelist())
    assert names == ["dictionary.csv", "dm.csv", "manifest.json", "subjects.csv"]
    dm = archive.read("xs-csv/dm.csv").decode("utf-8-sig")
    assert manager.one in dm and manager.two not in dm
    manifest = json.loads(archive.read("xs-csv/manifest.json"))
    assert manifest["sites"] == ["01"] and manifest["role"] == "data_manager"
    assert not any(arm.encode() in archive.read(n) for n in archive.namelist() for arm in ARMS)


def test_other_sites_unknown_forms_and_formats_are_refused(manager, client):
    assert client.get("/studies/xs/export/download?site=02").status_code == 404
    assert client.get("/studies/xs/export/download?form=zz").status_code == 404
    assert client.get("/studies/xs/export/download?format=xlsx").status_code == 422


def test_roles_without_export_are_refused(xs, make_user, login_as, client):
    make_user("mon", "monitor", "xs")
    login_as("mon")
    assert client.get("/studies/xs/export").status_code == 403


def test_the_api_streams_odm_for_a_token(xs, db, actor, make_user, client):
    make_user("pipe", "data_manager", "xs")
    token = create_token(db, actor, "pipe")
    response = client.get("/api/v1/studies/xs/export?format=odm", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.mimetype == "application/xml"
    body = response.get_data(as_text=True)
    assert f'SubjectKey="{xs.one}"' in body and f'SubjectKey="{xs.two}"' in body
    assert client.get("/api/v1/studies/xs/export?format=odm").status_code == 401
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/studies/{study}/export" in spec["paths"]
