"""CDISC Dataset-JSON 1.1 export: one ``<table>.json`` per form and per repeating group (or
``<table>.ndjson``: the metadata on the first line, then one row per line), plus ``manifest.json``.

Columns carry the ODM export's ItemDef OIDs (``export_layout``), so a reader can join them to the
ODM metadata; the key columns (subject, site, visit, ...) are ``IT.KEY.<name>`` with a keySequence.
Label columns are left out (the code lists are in the ODM metadata). Validated in the tests against
the official Dataset-JSON 1.1 schema (``/work/shared/reference/dataset-json/``).

A JSON file's ``records`` count comes after its rows (JSON objects are unordered), so each file is
written in one pass; the NDJSON metadata line needs the count first and costs one counting pass over
the same snapshot.
"""
import contextlib
import dataclasses
import datetime as dt
import io
import json

from ecrf.exchange import export_service as service
from ecrf.exchange.export_layout import form_tables

VERSION = "1.1.0"
_TYPES = {"integer": "integer", "float": "double", "boolean": "boolean", "date": "date",
          "datetime": "datetime", "time": "time", "text": "string", "partialDate": "string"}
_KEY_TYPES = {"record": "integer", "row": "integer", "visit_date": "date"}


@dataclasses.dataclass
class _Dataset:
    table: object
    out: object
    hashing: object
    rows: int = 0
    first: bool = True


def _columns(table):
    columns = [{"itemOID": f"IT.KEY.{key}", "name": key, "label": key.replace("_", " "),
                "dataType": _KEY_TYPES.get(key, "string"), "keySequence": i + 1}
               for i, key in enumerate(table.keys)]
    for column in table.columns:
        if column.in_metadata:
            columns.append({"itemOID": column.oid, "name": column.name, "label": column.label,
                            "dataType": _TYPES[column.data_type]})
    return columns


def _header(scope, table, created):
    return {"datasetJSONCreationDateTime": created, "datasetJSONVersion": VERSION,
            "fileOID": f"ecrf.{scope.spec.id}.{created}.{table.name}", "originator": "ecrf",
            "sourceSystem": {"name": "ecrf", "version": _version()},
            "studyOID": f"S.{scope.spec.id}", "metaDataVersionOID": f"MDV.{scope.study.current.number}",
            "itemGroupOID": table.oid, "name": table.name, "label": table.label,
            "columns": _columns(table)}


def _version():
    from importlib.metadata import version

    return version("ecrf")


def _converter(table):
    """Cells as Dataset-JSON values: booleans as true/false, everything else as stored."""
    flags = [c.data_type == "boolean" for c in table.columns if c.in_metadata]
    keep = [c.in_metadata for c in table.columns]
    if not any(flags) and all(keep):
        return lambda cells: cells
    def convert(cells):
        kept = [v for v, k in zip(cells, keep, strict=True) if k]
        return [bool(v) if f and v is not None else v for v, f in zip(kept, flags, strict=True)]
    return convert


def _count(session, scope, tables):
    """Rows per table of one form (``tables``), for the NDJSON metadata lines."""
    counts = {t.name: 0 for t in tables}
    for record in service.iter_records(session, scope, [tables[0].form]):
        for table in tables:
            if table.group is None:
                counts[table.name] += 1
            else:
                rows = record.data.get(table.group)
                counts[table.name] += len(rows) if isinstance(rows, list) else 0
    return counts


def write_dataset_json(session, scope, folder, *, actor, fmt="dataset-json", progress=None):
    """Write one Dataset-JSON file per table of ``scope`` into ``folder`` (a sink); return the
    manifest (written last)."""
    ndjson = fmt == "ndjson"
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    files, rows = {}, {}
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    for form in scope.forms:
        tables = form_tables(scope.spec.forms[form])
        counts = _count(session, scope, tables) if ndjson else None
        datasets = []
        try:
            for table in tables:
                raw = folder.open(f"{table.name}.{'ndjson' if ndjson else 'json'}")
                hashing = service.HashingWriter(raw)
                out = io.TextIOWrapper(hashing, encoding="utf-8", newline="\n", write_through=False)
                header = _header(scope, table, created)
                if ndjson:
                    header["records"] = counts[table.name]
                    out.write(dumps(header) + "\n")
                else:
                    out.write(dumps(header)[:-1] + ',"rows":[')
                datasets.append(_Dataset(table, out, hashing))
            converters = [_converter(d.table) for d in datasets]
            for record in service.iter_records(session, scope, [form]):
                for dataset, convert in zip(datasets, converters, strict=True):
                    table = dataset.table
                    for number, cells in enumerate(table.rows_of(record.data, record.missing), start=1):
                        keys = record.keys() if table.group is None else \
                            [record.subject, record.site, record.visit, record.record, number]
                        line = dumps(keys + convert(cells))
                        if ndjson:
                            dataset.out.write(line + "\n")
                        else:
                            dataset.out.write(line if dataset.first else "," + line)
                        dataset.first = False
                        dataset.rows += 1
                if progress:
                    progress(1)
            for dataset in datasets:
                if not ndjson:
                    dataset.out.write(f'],"records":{dataset.rows}}}')
                dataset.out.flush()
                rows[dataset.table.name] = dataset.rows
                files[f"{dataset.table.name}.{'ndjson' if ndjson else 'json'}"] = {
                    "rows": dataset.rows, "bytes": dataset.hashing.size,
                    "sha256": dataset.hashing.sha256.hexdigest()}
        finally:
            for dataset in datasets:
                with contextlib.suppress(OSError, ValueError):
                    dataset.out.detach()
                with contextlib.suppress(OSError, ValueError):
                    dataset.hashing.raw.close()
    document = service.manifest(scope, fmt, files, rows, actor, dataset_json_version=VERSION)
    folder.write_manifest(document)
    return document
