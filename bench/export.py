"""Benchmark: export throughput and peak memory per format, against plain stdlib ``csv`` writing.

    .venv/bin/python bench/export.py [--subjects 1000] [--visits 10] [--fields 100]
                                     [--wide-fields 300] [--wide-records 2000] [--rounds 2] [--web]

Builds a throwaway SQLite study in a temporary folder: ``--subjects`` subjects, each with a
``--fields``-field form at ``--visits`` visits (1,000 × 10 × 100 = 1,000,000 item values: integers,
decimals, coded values with labels, text and partial dates), and a wide form of ``--wide-fields``
fields × ``--wide-records`` records. The rows are inserted directly (the capture service's
validation and audit are measured by bench/capture.py, not here), then each export runs in a fresh
process:

* the baseline reads the same records in the same order and writes their values with ``csv.writer``;
* ``csv``, ``odm``, ``dataset-json`` (and ``dta`` when the ``stats`` extra is installed) run
  ``ecrf.exchange.export_service.run_export`` as ``ecrf export`` does.

For each it prints item values per second and peak resident memory (``ru_maxrss`` of its process),
and both as a ratio to the baseline of the same run (the fastest of ``--rounds`` interleaved runs) (targets: CSV within 2×, ODM and Dataset-JSON
within 4×). ``--fraction`` re-runs the CSV export on a quarter of the subjects to show that memory
does not grow with the size of the study.

``--web`` measures instead the download the web page and the API stream
(``GET /api/v1/studies/bench/export?format=...``, through the application as a WSGI client reads
it, chunk by chunk): its peak memory for the whole study and for half of it (``site=01``), next to
the baseline's, for the CSV ZIP, Dataset-JSON ZIP and ODM XML.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CODES = {"type": "integer", "enum": [1, 2, 3, 4], "x-ecrf": {"labels": {"1": "None", "2": "Mild", "3": "Moderate",
                                                                        "4": "Severe"}}}
PARTIAL = {"type": "string", "pattern": "^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$",
           "x-ecrf": {"widget": "partial-date"}}


def _field(i):
    kind = i % 5
    if kind == 0:
        return {"type": "integer", "minimum": 0, "maximum": 1000, "title": f"Count {i}"}
    if kind == 1:
        return {"type": "number", "title": f"Measure {i}", "x-ecrf": {"unit": "mg/L"}}
    if kind == 2:
        return dict(CODES, title=f"Grade {i}")
    if kind == 3:
        return {"type": "string", "maxLength": 200, "title": f"Comment {i}"}
    return dict(PARTIAL, title=f"Date {i}")


def _value(i, n):
    kind = i % 5
    if kind == 0:
        return (n * 7 + i) % 1000
    if kind == 1:
        return round(((n * 13 + i) % 10000) / 7, 3)
    if kind == 2:
        return 1 + (n + i) % 4
    if kind == 3:
        return f"Bemærkning {n}-{i} 备注"
    return ["2024", "2024-03", "2024-03-15"][(n + i) % 3]


def _form(title, count):
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, "type": "object",
            "properties": {f"f{i:03d}": _field(i) for i in range(count)}}


def build(folder, subjects, visits, fields, wide_fields, wide_records):
    """The study, its database, and the generated rows; returns the database URL."""
    from sqlalchemy import insert, select

    from ecrf import migrate
    from ecrf.actor import Actor
    from ecrf.db import Database, utcnow
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.models import FormRecord, FormVersion, Site, Subject

    study_dir = folder / "forms" / "bench"
    study_dir.mkdir(parents=True)
    wide_visits = max(1, -(-wide_records // subjects))
    study = {"id": "bench", "title": "Export benchmark",
             "sites": [{"id": "01", "name": "Site 01"}, {"id": "02", "name": "Site 02"}],
             "visits": [{"id": f"v{k:02d}", "label": f"Visit {k}", "day": 7 * k,
                         "forms": ["lab"] + (["wide"] if k < wide_visits else [])} for k in range(visits)]}
    (study_dir / "study.json").write_text(json.dumps(study), encoding="utf-8")
    (study_dir / "lab.json").write_text(json.dumps(_form("Laboratory", fields)), encoding="utf-8")
    (study_dir / "wide.json").write_text(json.dumps(_form("Wide form", wide_fields)), encoding="utf-8")
    url = f"sqlite:///{folder / 'bench.sqlite3'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    session = database.sessions()
    publish_study(session, Actor.cli(), load_study(study_dir))
    with session.begin():
        sites = {k: v for k, v in session.execute(select(Site.key, Site.id))}
        versions = {k: v for k, v in session.execute(select(FormVersion.form_key, FormVersion.id))}
        study_id = session.execute(select(Site.study_id)).scalar()
        now = utcnow()
        session.execute(insert(Subject), [
            {"study_id": study_id, "site_id": sites["01" if n % 2 == 0 else "02"], "key": f"S{n:05d}",
             "state": "enrolled", "created_at": now} for n in range(subjects)])
        ids = {k: v for k, v in session.execute(select(Subject.key, Subject.id))}
        wide_done = 0
        for n in range(subjects):
            rows = []
            for k in range(visits):
                data = {f"f{i:03d}": _value(i, n * visits + k) for i in range(fields)}
                rows.append(_record(ids[f"S{n:05d}"], f"v{k:02d}", "lab", versions["lab"], data, now))
                if k < wide_visits and wide_done < wide_records:
                    data = {f"f{i:03d}": _value(i, n + k) for i in range(wide_fields)}
                    rows.append(_record(ids[f"S{n:05d}"], f"v{k:02d}", "wide", versions["wide"], data, now))
                    wide_done += 1
            session.execute(insert(FormRecord), rows)
    session.close()
    database.engine.dispose()
    return url


def _record(subject_id, visit, form, version_id, data, now):
    return {"subject_id": subject_id, "visit_key": visit, "form_key": form, "seq": 1, "form_version_id": version_id,
            "data": data, "missing": {}, "status": "complete", "version": 1, "created_at": now, "updated_at": now}


def run_one(url, fmt, form, output, subjects_limit):
    """One measurement in this (fresh) process: seconds and peak RSS."""
    import csv

    from ecrf.actor import Actor
    from ecrf.db import Database
    from ecrf.exchange import export_service
    from ecrf.exchange.export_layout import form_tables

    database = Database(url)
    session = database.sessions()
    scope = export_service.operator_scope(session, "bench", forms=(form,))
    if subjects_limit:  # half the subjects: site 01 only
        scope = export_service.operator_scope(session, "bench", sites=("01",), forms=(form,))
    started = time.perf_counter()
    values = 0
    if fmt == "baseline":
        table = form_tables(scope.spec.forms[form])[0]
        names = [c.field for c in table.columns if c.role == "value"]
        with export_service.snapshot(session), open(output, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["subject", "site", "visit", *names])
            for record in export_service.iter_records(session, scope):
                row = [record.data.get(n) for n in names]
                values += sum(v is not None for v in row)
                writer.writerow([record.subject, record.site, record.visit, *row])
    else:
        result = export_service.run_export(session, Actor.cli(), scope, fmt, output, force=True)
        values = None if not result.rows else sum(result.rows.values())
    seconds = time.perf_counter() - started
    session.close()
    print(json.dumps({"seconds": seconds, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "rows": values}))


def web_token(url):
    """A data manager of the bench study with an API token (for ``--web``)."""
    from ecrf.actor import Actor
    from ecrf.auth import accounts
    from ecrf.db import Database

    database = Database(url)
    session = database.sessions()
    accounts.create_user(session, Actor.cli(), "bench", "Streamed-downloads-2026!", must_change_password=False)
    accounts.grant_role(session, Actor.cli(), "bench", "bench", "data_manager")
    token = accounts.create_token(session, Actor.cli(), "bench")
    session.close()
    database.engine.dispose()
    return token


def run_web(url, fmt, form, token, half):
    """One streamed web export in this (fresh) process, read chunk by chunk and dropped."""
    from ecrf import create_app

    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "bench", "DATABASE_URL": url})
    query = f"format={fmt}&form={form}" + ("&site=01" if half else "")
    started = time.perf_counter()
    response = app.test_client().get(f"/api/v1/studies/bench/export?{query}",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.is_streamed, response.status
    size = 0
    for chunk in response.response:
        size += len(chunk)
    response.close()
    print(json.dumps({"seconds": time.perf_counter() - started, "bytes": size,
                      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def web(url, folder, form, rounds):
    """``--web``: peak memory of streamed downloads of the whole study and of half of it."""
    token = web_token(url)
    base = min((measure(url, "baseline", form, folder) for _ in range(rounds)), key=lambda r: r["seconds"])
    print(f"\nweb downloads of {form} (streamed); baseline stdlib csv peak RSS {base['maxrss_kib'] / 1024:.0f} MiB")
    print(f"  {'format':<13} {'MiB sent':>9} {'seconds':>8} {'peak MiB':>9} {'memory ratio':>13} {'half: peak MiB':>15}")
    for fmt in ("csv", "dataset-json", "odm"):
        got = [_web(url, fmt, form, token, False) for _ in range(rounds)]
        full = min(got, key=lambda r: r["seconds"])
        peak = max(r["maxrss_kib"] for r in got)
        half = _web(url, fmt, form, token, True)
        print(f"  {fmt:<13} {full['bytes'] / 2**20:>9.0f} {full['seconds']:>8.1f} {peak / 1024:>9.0f} "
              f"{peak / base['maxrss_kib']:>12.2f}x {half['maxrss_kib'] / 1024:>15.0f}")


def _web(url, fmt, form, token, half):
    command = [sys.executable, __file__, "--one-web", fmt, "--url", url, "--form", form, "--token", token]
    if half:
        command.append("--half")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(url, fmt, form, folder, half=False):
    output = folder / f"out-{fmt}-{form}-{int(half)}" / ("x.xml" if fmt == "odm" else "x")
    if fmt == "baseline":
        output = folder / f"baseline-{form}-{int(half)}.csv"
    command = [sys.executable, __file__, "--one", fmt, "--url", url, "--form", form, "--output", str(output)]
    if half:
        command.append("--half")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--visits", type=int, default=10)
    parser.add_argument("--fields", type=int, default=100)
    parser.add_argument("--wide-fields", type=int, default=300)
    parser.add_argument("--wide-records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="Runs per format; the fastest counts.")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--form", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--half", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--web", action="store_true",
                        help="Measure the streamed web download's memory instead of the command line's.")
    parser.add_argument("--one-web", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_web:
        return run_web(args.url, args.one_web, args.form, args.token, args.half)
    if args.one:
        return run_one(args.url, args.one, args.form, Path(args.output), args.half)
    formats = ["csv", "odm", "dataset-json"]
    try:
        import pyreadstat  # noqa: F401
        formats.append("dta")
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        url = build(folder, args.subjects, args.visits, args.fields, args.wide_fields, args.wide_records)
        print(f"generated in {time.perf_counter() - started:.0f} s: {args.subjects} subjects x {args.visits} "
              f"visits x {args.fields} fields = {args.subjects * args.visits * args.fields:,} values; "
              f"wide form {args.wide_fields} fields x {args.wide_records} records")
        if args.web:
            return web(url, folder, "lab", args.rounds)
        for form, values in (("lab", args.subjects * args.visits * args.fields),
                             ("wide", args.wide_fields * args.wide_records)):
            best = {}
            for _round in range(args.rounds):  # interleaved, so a busy moment hits every format alike
                for fmt in ["baseline", *formats]:
                    got = measure(url, fmt, form, folder)
                    if fmt not in best or got["seconds"] < best[fmt]["seconds"]:
                        best[fmt] = dict(got, maxrss_kib=max(got["maxrss_kib"], best.get(fmt, got)["maxrss_kib"]))
            base = best["baseline"]
            print(f"\n{form}: {values:,} item values; baseline stdlib csv: {values / base['seconds']:,.0f} "
                  f"values/s, peak RSS {base['maxrss_kib'] / 1024:.0f} MiB (best of {args.rounds})")
            print(f"  {'format':<13} {'values/s':>12} {'time ratio':>11} {'peak MiB':>9} {'memory ratio':>13}")
            for fmt in formats:
                got = best[fmt]
                print(f"  {fmt:<13} {values / got['seconds']:>12,.0f} {got['seconds'] / base['seconds']:>10.2f}x "
                      f"{got['maxrss_kib'] / 1024:>9.0f} {got['maxrss_kib'] / base['maxrss_kib']:>12.2f}x")
        half = measure(url, "csv", "lab", folder, half=True)
        print(f"\nflat memory: csv export of half the subjects (site 01 only): peak RSS "
              f"{half['maxrss_kib'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
