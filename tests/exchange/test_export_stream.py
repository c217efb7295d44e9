"""Exports streamed while they are written (page and API): the same content as the command line's
export of the same scope, a streamed response, the audit event only for an export the client read to
the end, and no arm for a blinded caller."""
import hashlib
import io
import json
import re
import zipfile

import pytest
from sqlalchemy import func, select

from audit import audit_event
from ecrf.auth.accounts import create_token
from ecrf.exchange import export_service, export_stream
from tests.exchange.conftest import ARMS

ZIPPED = ["csv", "csv-long", "dataset-json", "ndjson", "dta", "sav", "xpt"]


@pytest.fixture
def api(xs, db, actor, make_user, client):
    """GET the export API as a data manager of every site (blinded, like the operator here)."""
    make_user("pipe", "data_manager", "xs")
    token = create_token(db, actor, "pipe")

    def get(query):
        return client.get(f"/api/v1/studies/xs/export?{query}", headers={"Authorization": f"Bearer {token}"})

    return get


def exports(db):
    return db.scalar(select(func.count()).select_from(audit_event).where(audit_event.c.action == "export"))


def members(body, fmt):
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    prefix = f"xs-{fmt}/"
    assert all(n.startswith(prefix) for n in archive.namelist())
    assert archive.namelist()[-1] == prefix + "manifest.json"
    return {n[len(prefix):]: archive.read(n) for n in archive.namelist()}


def _same_content(fmt, name, streamed, written):
    """Equal but for what names the run (creation time, file OID)."""
    if fmt == "dataset-json":
        streamed, written = json.loads(streamed), json.loads(written)
        for doc in (streamed, written):
            doc.pop("datasetJSONCreationDateTime"), doc.pop("fileOID")
        return streamed == written
    if fmt == "ndjson":
        first, *rows = streamed.splitlines()
        first_w, *rows_w = written.splitlines()
        meta, meta_w = json.loads(first), json.loads(first_w)
        for doc in (meta, meta_w):
            doc.pop("datasetJSONCreationDateTime"), doc.pop("fileOID")
        return meta == meta_w and rows == rows_w
    if fmt in ("dta", "sav", "xpt"):
        import pyreadstat

        def read(data, path):
            path.write_bytes(data)
            frame, _meta = getattr(pyreadstat, {"dta": "read_dta", "sav": "read_sav", "xpt": "read_xport"}[fmt])(
                str(path))
            return frame
        import tempfile
        from pathlib import Path
        with tempfile.TemporaryDirectory() as folder:
            return read(streamed, Path(folder) / f"a.{fmt}").equals(read(written, Path(folder) / f"b.{fmt}"))
    return streamed == written


@pytest.mark.parametrize("fmt", ZIPPED)
def test_a_streamed_zip_holds_the_command_lines_export(fmt, api, export, db):
    response = api(f"format={fmt}")
    assert response.status_code == 200 and response.is_streamed and "Content-Length" not in response.headers
    files = members(response.get_data(), fmt)
    _result, folder = export(fmt)
    written = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(files) == sorted(written)
    manifest = json.loads(files.pop("manifest.json"))
    assert manifest["role"] == "data_manager" and manifest["rows"] == json.loads(written["manifest.json"])["rows"]
    for name, data in files.items():
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert _same_content(fmt, name, data, written[name]), name


def test_a_streamed_odm_file_is_the_command_lines_export(api, export):
    response = api("format=odm")
    assert response.is_streamed and response.mimetype == "application/xml"
    _result, path = export("odm")
    run = re.compile(r' (FileOID|CreationDateTime|Originator)="[^"]*"')
    assert run.sub("", response.get_data(as_text=True)) == run.sub("", path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("fmt", [*ZIPPED, "odm"])
def test_a_blinded_callers_stream_holds_no_arm(fmt, api):
    body = api(f"format={fmt}").get_data()
    assert body and not any(arm.encode() in body for arm in ARMS)
    if fmt != "odm":
        assert not any(arm.encode() in data for data in members(body, fmt).values() for arm in ARMS)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 256 bytes, so even the small study's export takes many."""
    from ecrf.exchange import export_odm

    monkeypatch.setattr(export_stream, "CHUNK", 256)
    monkeypatch.setattr(export_odm, "BUFFER", 256)


@pytest.mark.parametrize("fmt", ["csv", "odm"])
def test_the_audit_event_comes_when_the_stream_is_read_to_its_end(fmt, small_chunks, api, db):
    before = exports(db)
    response = api(f"format={fmt}")
    assert exports(db) == before  # nothing is exported before the client reads
    chunks = iter(response.response)
    body = [next(chunks), next(chunks)]
    assert exports(db) == before
    body.extend(chunks)
    assert exports(db) == before + 1
    if fmt == "csv":
        manifest = json.loads(members(b"".join(body), fmt)["manifest.json"])
        event = db.execute(select(audit_event.c.new_value).where(audit_event.c.action == "export")
                           .order_by(audit_event.c.seq.desc())).scalar()
        recorded = json.loads(event) if isinstance(event, str) else event
        assert recorded["rows"] == manifest["rows"]
        assert recorded["manifest_sha256"] == export_service.manifest_hash(manifest)


@pytest.mark.parametrize("fmt", ["csv", "dataset-json", "odm"])
def test_a_client_that_stops_reading_records_nothing(fmt, small_chunks, api, db, actor, xs):
    from ecrf.capture.service import save_form

    before = exports(db)
    response = api(f"format={fmt}")
    chunks = iter(response.response)
    next(chunks), next(chunks)
    response.close()
    assert exports(db) == before
    # the export's snapshot and session are gone: a save and another export go through
    save_form(db, actor, "xs", xs.one, "v2", "dm", {"name": "after"})
    assert api(f"format={fmt}").get_data() and exports(db) == before + 1


@pytest.mark.parametrize("fmt", ["csv", "odm"])
def test_an_export_that_fails_midway_breaks_the_stream_and_records_nothing(fmt, small_chunks, api, db,
                                                                            monkeypatch):
    reading = export_service.iter_records

    def failing(session, scope, forms=None):
        yield from reading(session, scope, forms)
        raise OSError("the database went away")

    monkeypatch.setattr(export_service, "iter_records", failing)
    before = exports(db)
    response = api(f"format={fmt}")
    received = []
    with pytest.raises(OSError, match="went away"):
        for chunk in response.response:
            received.append(chunk)
    assert received  # the client had bytes already: the transfer is cut, not refused
    body = b"".join(received)
    if fmt == "csv":
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(body))
    else:
        assert not body.rstrip().endswith(b"</ODM>")
    assert exports(db) == before
