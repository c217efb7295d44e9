"""Stata (``.dta``), SPSS (``.sav``) and SAS transport (``.xpt``, version 8) files through
pyreadstat: one file per form and repeating group, with variable labels and (for numeric code lists)
value labels; ``subjects``, and ``manifest.json`` with each file's SHA-256 and any variable renamed
to fit the format (32 characters at most).

pyreadstat writes a whole data frame, so unlike the other formats one table at a time is held in
memory. It is an optional extra: ``pip install 'ecrf[stats]'``.
"""
import re

from ecrf.errors import EcrfError
from ecrf.exchange import export_service as service
from ecrf.exchange.export_layout import form_tables

MAX_NAME = 32
#: The longest variable label each format stores (longer ones are cut, the dictionary keeps them).
MAX_LABEL = {"dta": 80, "sav": 256, "xpt": 40}
_NUMERIC = {"integer", "float", "boolean"}


class ExtraMissing(EcrfError):
    status = 501


def _libraries():
    try:
        import pandas
        import pyreadstat
    except ImportError:
        raise ExtraMissing("Stata/SPSS/SAS exports need the optional extra 'stats': "
                           "pip install 'ecrf[stats]' (pyreadstat and pandas)") from None
    return pandas, pyreadstat


def require_extra():
    """Raise ExtraMissing (naming the extra) when pyreadstat or pandas is not installed."""
    _libraries()


def _names(names):
    """Names that fit the formats: at most 32 characters, letters, digits and _, unique."""
    used, renamed = set(), {}
    for name in names:
        short = re.sub(r"[^A-Za-z0-9_]", "_", name)[:MAX_NAME]
        n = 1
        while short.lower() in used:
            suffix = f"_{n}"
            short = short[:MAX_NAME - len(suffix)] + suffix
            n += 1
        used.add(short.lower())
        renamed[name] = short
    return renamed


def _write(pyreadstat, fmt, frame, path, labels, value_labels, table_name):
    if fmt == "dta":
        pyreadstat.write_dta(frame, str(path), column_labels=labels, variable_value_labels=value_labels,
                             version=15)
    elif fmt == "sav":
        pyreadstat.write_sav(frame, str(path), column_labels=labels, variable_value_labels=value_labels)
    else:
        pyreadstat.write_xport(frame, str(path), column_labels=labels, table_name=table_name[:32],
                               file_format_version=8)


def write_stats(session, scope, folder, *, actor, fmt, progress=None):
    """Write ``scope`` as ``fmt`` (dta, sav, xpt) into ``folder`` (a sink), one table at a time;
    return the manifest (written last)."""
    pandas, pyreadstat = _libraries()
    files, rows, renamed_all = {}, {}, {}
    subjects = list(service.iter_subjects(session, scope))
    frame = pandas.DataFrame({"subject": [s[0] for s in subjects], "site": [s[1] for s in subjects],
                              "state": [s[2] for s in subjects],
                              **({"arm": [s[3] or "" for s in subjects]} if scope.arm_visible else {})})
    tables = [("subjects", "IG.subjects", frame, {}, {})]
    for form in scope.forms:
        for table in form_tables(scope.spec.forms[form]):
            tables.append(_frame(pandas, session, scope, table, progress))
    for name, _oid, frame, labels, value_labels in tables:
        renamed = _names(list(frame.columns))
        frame = frame.rename(columns=renamed)
        changed = {old: new for old, new in renamed.items() if old != new}
        if changed:
            renamed_all[name] = changed
        with folder.local_path(f"{name}.{fmt}") as path:
            _write(pyreadstat, fmt, frame, path,
                   {renamed[k]: v[:MAX_LABEL[fmt]] for k, v in labels.items()} or None,
                   {renamed[k]: v for k, v in value_labels.items()} if fmt != "xpt" else None, name)
            files[path.name] = {"rows": len(frame), "bytes": path.stat().st_size,
                                "sha256": service.file_sha256(path)}
        rows[name] = len(frame)
    document = service.manifest(scope, fmt, files, rows, actor, renamed_variables=renamed_all)
    folder.write_manifest(document)
    return document


def _frame(pandas, session, scope, table, progress):
    names = [*table.keys, *(c.name for c in table.columns)]
    data = {name: [] for name in names}
    for record in service.iter_records(session, scope, [table.form]):
        for number, cells in enumerate(table.rows_of(record.data, record.missing), start=1):
            keys = record.keys() if table.group is None else \
                [record.subject, record.site, record.visit, record.record, number]
            for name, cell in zip(names, keys + cells, strict=True):
                data[name].append(cell)
        if progress and table.group is None:
            progress(1)
    columns = {}
    numeric = {"record", "row"} | {c.name for c in table.columns if c.data_type in _NUMERIC}
    for name in names:
        if name in numeric:
            columns[name] = pandas.Series(data[name], dtype="float64")
        else:
            columns[name] = pandas.Series(["" if v is None else str(v) for v in data[name]], dtype="object")
    labels = {c.name: c.label for c in table.columns}
    value_labels = {c.name: {float(code): label[:MAX_LABEL["dta"]] for code, label in c.codes}
                    for c in table.columns if c.codes and c.data_type in ("integer", "float")}
    return table.name, table.oid, pandas.DataFrame(columns, columns=names), labels, value_labels
