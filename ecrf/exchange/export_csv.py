"""CSV export: one file per form (one row per form record), a child file per repeating group keyed
by its parent row, ``subjects.csv``, ``dictionary.csv`` and ``manifest.json``; or (``csv-long``)
one row per subject, visit, record and field in ``long.csv``, for repeated-measures analysis.

UTF-8 with a byte-order mark (so spreadsheets read Danish and Chinese text right), RFC 4180 quoting,
cells a spreadsheet would read as a formula prefixed with ``'`` (``ecrf.audit_view.neutralise``).
Rows are written as they are read; nothing holds a whole table.
"""
import contextlib
import csv
import io

from ecrf.audit_view import neutralise
from ecrf.exchange import export_service as service
from ecrf.exchange.export_layout import form_tables

DICTIONARY_COLUMNS = ("table", "form", "group", "variable", "oid", "label", "type", "unit", "code_list",
                      "range", "origin", "form_versions")


def _cells(cells):
    """Cells for csv.writer: text neutralised (``neutralise``); numbers and None (an empty cell) as
    they are, which csv writes itself (floats by repr, so nothing is rounded)."""
    return [neutralise(c) if c.__class__ is str and c[:1] in _FORMULA_FIRST else c for c in cells]


#: First characters ``neutralise`` changes (asked of it, so the rule stays in one place).
_FORMULA_FIRST = frozenset(ch for ch in map(chr, range(128)) if neutralise(ch) != ch) | {"'"}


class CsvFile:
    """One CSV file being written: counts its rows; its SHA-256 is taken when it is closed."""

    def __init__(self, sink, name, header):
        self.name = name
        self.raw = sink.open(name)
        self.hashing = service.HashingWriter(self.raw)
        self.text = io.TextIOWrapper(self.hashing, encoding="utf-8", newline="")
        self.text.write("\ufeff")
        self.writer = csv.writer(self.text)
        self.writer.writerow(header)
        self.rows = 0

    def write(self, cells):
        self.writer.writerow(_cells(cells))
        self.rows += 1

    def __enter__(self):
        return self

    def __exit__(self, kind, _exc, _tb):
        if kind is not None:
            self.discard()

    def discard(self):
        """Close the file after an error (its content no longer matters)."""
        with contextlib.suppress(OSError, ValueError):
            self.text.flush()
        with contextlib.suppress(OSError, ValueError):
            self.raw.close()

    def close(self):
        self.text.flush()
        self.text.detach()
        self.raw.close()
        return {"rows": self.rows, "bytes": self.hashing.size, "sha256": self.hashing.sha256.hexdigest()}


def _code_list_text(column):
    if not column.codes:
        return ""
    return "; ".join(f"{code}={label}" for code, label in column.codes)


def _range_text(column):
    if column.minimum is None and column.maximum is None:
        return ""
    low = "" if column.minimum is None else column.minimum
    high = "" if column.maximum is None else column.maximum
    return f"{low}..{high}"


def _write_dictionary(folder, session, scope, tables, files):
    versions = {form: "; ".join(service.form_versions(session, scope, form)) for form in scope.forms}
    with CsvFile(folder, "dictionary.csv", DICTIONARY_COLUMNS) as out:
        for table in tables:
            for column in table.columns:
                out.write([table.name, table.form, table.group or "", column.name, column.oid, column.label,
                           column.data_type, column.unit or "", _code_list_text(column), _range_text(column),
                           "derived" if column.derived else "entered", versions[table.form]])
        files["dictionary.csv"] = out.close()


def _write_subjects(folder, session, scope, files):
    header = ["subject", "site", "state"] + (["arm"] if scope.arm_visible else [])
    with CsvFile(folder, "subjects.csv", header) as out:
        for row in service.iter_subjects(session, scope):
            out.write(row if scope.arm_visible else row[:3])
        files["subjects.csv"] = out.close()
    return out.rows


def write_csv(session, scope, folder, *, actor, fmt="csv", progress=None):
    """Write the CSV export of ``scope`` into ``folder`` (a sink: ``FolderSink`` or a streamed ZIP);
    return its manifest (also written, last)."""
    files, rows = {}, {}
    rows["subjects"] = _write_subjects(folder, session, scope, files)
    tables = [t for form in scope.forms for t in form_tables(scope.spec.forms[form])]
    if fmt == "csv-long":
        rows["long"] = _write_long(folder, session, scope, tables, files, progress)
    else:
        for form in scope.forms:
            form_rows = _write_form(folder, session, scope, [t for t in tables if t.form == form], files,
                                    progress)
            rows.update(form_rows)
    _write_dictionary(folder, session, scope, tables, files)
    document = service.manifest(scope, fmt, files, rows, actor, encoding="UTF-8 with byte-order mark",
                                layout="long" if fmt == "csv-long" else "wide")
    folder.write_manifest(document)
    return document


def _write_form(folder, session, scope, tables, files, progress):
    main, children = tables[0], tables[1:]
    with contextlib.ExitStack() as stack:
        outputs = []
        for table in tables:
            out = stack.enter_context(CsvFile(folder, f"{table.name}.csv",
                                              [*table.keys, *(c.name for c in table.columns)]))
            outputs.append(out)
        for record in service.iter_records(session, scope, [main.form]):
            keys = record.keys()
            for row in main.rows_of(record.data, record.missing):
                outputs[0].write(keys + row)
            parent = [record.subject, record.site, record.visit, record.record]
            for table, out in zip(children, outputs[1:], strict=True):
                for number, row in enumerate(table.rows_of(record.data, record.missing), start=1):
                    out.write(parent + [number] + row)
            if progress:
                progress(1)
        counts = {}
        for table, out in zip(tables, outputs, strict=True):
            files[out.name] = out.close()
            counts[table.name] = out.rows
        return counts


LONG_COLUMNS = ("subject", "site", "visit", "visit_date", "form", "record", "row", "field", "value", "label",
                "missing", "missing_reason")


def _write_long(folder, session, scope, tables, files, progress):
    """One row per subject, visit, record, (group row) and field with a value or a flag."""
    with CsvFile(folder, "long.csv", LONG_COLUMNS) as out:
        return _write_long_rows(out, session, scope, tables, files, progress)


def _write_long_rows(out, session, scope, tables, files, progress):
    by_form = {}
    for table in tables:
        by_form.setdefault(table.form, []).append(table)
    for record in service.iter_records(session, scope):
        visit_date = record.visit_date.isoformat() if record.visit_date else None
        for table in by_form[record.form]:
            for number, cells in enumerate(table.rows_of(record.data, record.missing), start=1):
                by_field = {}
                for column, cell in zip(table.columns, cells, strict=True):
                    entry = by_field.setdefault(column.field if column.role != "choice" else column.name,
                                                {"value": None, "label": None, "missing": None, "reason": None})
                    key = "value" if column.role == "choice" else column.role
                    entry[key] = cell
                for field, entry in by_field.items():
                    if entry["value"] is None and entry["missing"] is None:
                        continue
                    name = f"{table.group}/{field}" if table.group else field
                    out.write([record.subject, record.site, record.visit, visit_date, record.form,
                               record.record, number if table.group else "", name, entry["value"],
                               entry["label"], entry["missing"], entry["reason"]])
        if progress:
            progress(1)
    files["long.csv"] = out.close()
    return out.rows
