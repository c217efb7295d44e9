"""Import benchmarks: data import throughput through the capture service (records per second for
the largest reference form), as a ratio to bench/capture.py's audited save measured in the same run,
and the time to convert the largest public REDCap dictionary. Prints figures; not part of the tests.

    .venv/bin/python bench/imports.py [--records 10000] [--saves 200] [--no-postgres]

Subjects are enrolled before the import is timed, so every row of the file is one save_form of the
largest reference form (in one transaction, each row in its savepoint, as ``ecrf import data`` runs).
"""
import argparse
import csv
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture import bench_saves, database  # noqa: E402
from ecrf import migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.auth import accounts, passwords  # noqa: E402
from ecrf.capture.service import enrol_subject  # noqa: E402
from ecrf.db import make_engine, make_session_factory  # noqa: E402
from ecrf.definitions import load_study  # noqa: E402
from ecrf.definitions.publish import publish_study  # noqa: E402
from ecrf.demo import sample_document  # noqa: E402
from ecrf.exchange.import_data import import_data  # noqa: E402
from ecrf.exchange.import_redcap import convert_dictionary, read_dictionary  # noqa: E402
from ecrf.exchange.studyfiles import write_study  # noqa: E402
from ecrf.paths import resource  # noqa: E402
from ecrf.studies import add_site  # noqa: E402

REDCAP = Path("/work/shared/reference/redcap")


def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and not any(isinstance(v, dict) for v in value):
        return ";".join(str(v) for v in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def bench_import(url, records, folder):
    engine = make_engine(url)
    migrate.upgrade(engine)
    passwords.configure(1, 1024)
    session = make_session_factory(engine)()
    actor = Actor.system("bench")
    study = load_study(resource("forms") / "mesrix-ii")
    publish_study(session, actor, study)
    # the study's subject ids allow 999 subjects per site
    sites = [str(60 + i) for i in range(-(-records // 900))]
    for site in sites:
        add_site(session, actor, study.id, site, f"Bench site {site}")
    form = max(study.forms.values(), key=lambda f: len(f.fields))
    visit = next(v for v in study.visits if form.id in v.forms)
    document = sample_document(form, dt.date(2026, 1, 1))
    user = accounts.create_user(session, actor, "benchdm", "bench password 1", must_change_password=False)
    accounts.grant_role(session, actor, "benchdm", study.id, "data_manager")
    keys = [enrol_subject(session, actor, study.id, sites[i // 900]).key for i in range(records)]
    names = [f.name for f in form.fields]
    path = Path(folder) / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["subject", "site", "visit", *names])
        for key in keys:
            writer.writerow([key, key[:2], visit.id, *(cell(document.get(n)) for n in names)])
    start = time.perf_counter()
    report = import_data(session, user, study.id, form.id, path)
    elapsed = time.perf_counter() - start
    assert report.count("created") == records, report.count("created")
    start = time.perf_counter()
    again = import_data(session, user, study.id, form.id, path, dry_run=True)
    unchanged = time.perf_counter() - start
    assert again.count("unchanged") == records
    session.close()
    engine.dispose()
    return form, elapsed, unchanged


def bench_redcap(folder, rounds=5):
    sizes = {p: sum(1 for _ in p.open(encoding="utf-8-sig")) for p in REDCAP.glob("*.csv")}
    largest = max(sizes, key=sizes.get)
    convert_times, full_times = [], []
    for i in range(rounds):
        start = time.perf_counter()
        conversion = convert_dictionary(read_dictionary(largest), "bench")
        convert_times.append(time.perf_counter() - start)
        write_study(conversion, Path(folder) / f"r{i}" / "bench")
        full_times.append(time.perf_counter() - start)
    fields = sum(len(f["properties"]) for f in conversion.forms.values())
    return largest.name, fields, len(conversion.forms), min(convert_times), min(full_times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        name, fields, forms, convert, full = bench_redcap(folder)
    print(f"REDCap dictionary {name} ({forms} forms, {fields} fields): convert {convert * 1000:.1f} ms; "
          f"convert, write and validate {full * 1000:.1f} ms (best of 5)")
    for kind in ["sqlite"] + ([] if args.no_postgres else ["postgresql"]):
        with database(kind) as url:
            _, _, service, _ = bench_saves(url, args.saves)
        per_save = statistics.median(service)
        with database(kind) as url, tempfile.TemporaryDirectory() as folder:
            form, elapsed, unchanged = bench_import(url, args.records, folder)
        per_record = elapsed / args.records
        print(f"[{kind}] import of {args.records} records of {form.id!r} ({len(form.fields)} fields): "
              f"{elapsed:.1f} s, {args.records / elapsed:.0f} records/s, {per_record * 1000:.2f} ms per record; "
              f"audited save (bench/capture.py, {args.saves} saves) median {per_save * 1000:.2f} ms; "
              f"ratio {per_record / per_save:.2f}x per record; dry run of the same file again "
              f"(all unchanged) {unchanged:.1f} s")


if __name__ == "__main__":
    main()
