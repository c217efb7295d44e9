"""Capture benchmarks: one audited save of the largest reference form vs a plain insert, and the
subject matrix page at 10,000 subjects. Prints figures; not part of the test run.

The plain insert (the baseline) writes, in one transaction, the document a save stored (its
calculated scores included) as a form record and as many audit rows as that save appended, with
placeholder hashes: what any audited save must write at the least.

    .venv/bin/python bench/capture.py [--saves 200] [--subjects 10000] [--no-postgres]

PostgreSQL is measured when ECRF_TEST_POSTGRES_URL (or the default local server) answers; the bench
creates and drops its own database.
"""
import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import audit_event, head  # noqa: E402
from audit.canonical import value_text  # noqa: E402
from ecrf.scratch import postgres_url, scratch_database  # noqa: E402
from ecrf import create_app, migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.auth import accounts, passwords  # noqa: E402
from ecrf.capture.service import diff_documents, enrol_subject, save_form  # noqa: E402
from ecrf.db import make_engine, make_session_factory  # noqa: E402
from ecrf.definitions import load_study  # noqa: E402
from ecrf.definitions.publish import publish_study  # noqa: E402
from ecrf.demo import sample_document  # noqa: E402
from ecrf.models import FormRecord, FormVersion, Site, Study, Subject  # noqa: E402
from ecrf.paths import resource  # noqa: E402
from ecrf.studies import add_site  # noqa: E402

POSTGRES = postgres_url()


def database(kind):
    """A fresh database URL of ``kind``, removed afterwards."""
    return scratch_database(kind, admin_url=POSTGRES, prefix="ecrf_bench")


def largest_form(study):
    return max(study.forms.values(), key=lambda f: len(f.fields))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def bench_saves(url, saves):
    engine = make_engine(url)
    migrate.upgrade(engine)
    session = make_session_factory(engine)()
    actor = Actor.system("bench")
    study = load_study(resource("forms") / "mesrix-ii")
    publish_study(session, actor, study)
    add_site(session, actor, study.id, "91", "Bench site")
    form = largest_form(study)
    visit = next(v for v in study.visits if form.id in v.forms)
    document = sample_document(form, dt.date(2026, 1, 1))
    subjects = [enrol_subject(session, actor, study.id, "91").key for _ in range(saves * 2)]
    service_times = []
    for key in subjects[:saves]:
        before = head(session.connection())[0]
        start = time.perf_counter()
        result = save_form(session, actor, study.id, key, visit.id, form.id, document)
        service_times.append(time.perf_counter() - start)
    # The baseline writes what a save stored: the derived document (calculated scores included)
    # and as many audit rows as the save appended.
    stored = dict(result.record.data)
    events_per_save = head(session.connection())[0] - before
    assert events_per_save == len(diff_documents({}, stored)) + 1
    form_version_id = session.scalar(select(FormVersion.id).where(FormVersion.content_hash == form.hash))
    subject_ids = {k: i for k, i in session.execute(select(Subject.key, Subject.id))}
    plain_times = []
    now = dt.datetime.now(dt.timezone.utc)
    seq = session.scalar(select(audit_event.c.seq).order_by(audit_event.c.seq.desc()).limit(1)) + 10_000_000
    session.commit()
    for key in subjects[saves:]:
        rows = [{"seq": seq + i, "ts": now.isoformat(), "action": "create", "channel": "system",
                 "field": pointer, "new_value": value_text(new), "prev_hash": "0" * 64, "hash": "0" * 64}
                for i, (pointer, _, new) in enumerate(diff_documents({}, stored))]
        rows.append({"seq": seq + len(rows), "ts": now.isoformat(), "action": "status_change",
                     "channel": "system", "field": None, "new_value": value_text("draft"),
                     "prev_hash": "0" * 64, "hash": "0" * 64})
        seq += len(rows)
        start = time.perf_counter()
        with session.begin():
            session.add(FormRecord(subject_id=subject_ids[key], visit_key=visit.id, form_key=form.id,
                                   form_version_id=form_version_id, data=stored, status="draft"))
            session.flush()
            session.execute(insert(audit_event), rows)
        plain_times.append(time.perf_counter() - start)
    session.close()
    engine.dispose()
    return form, events_per_save, service_times, plain_times


def bench_matrix(url, subjects, requests=20):
    engine = make_engine(url)
    migrate.upgrade(engine)
    passwords.configure(1, 1024)
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "bench", "DATABASE_URL": url,
                      "WTF_CSRF_ENABLED": False})
    session = make_session_factory(engine)()
    actor = Actor.system("bench")
    study = load_study(resource("forms") / "mesrix-ii")
    publish_study(session, actor, study)
    for site in ("91", "92", "93"):
        add_site(session, actor, study.id, site, f"Site {site}")
    study_id = session.scalar(select(Study.id).where(Study.key == study.id))
    site_ids = list(session.scalars(select(Site.id).where(Site.study_id == study_id)))
    session.commit()
    with session.begin():  # bulk set-up: the matrix reads what is stored, however it got there
        session.execute(insert(Subject), [
            {"study_id": study_id, "site_id": site_ids[i % 3], "key": f"9{i % 3 + 1}-{i:05d}", "state": "enrolled",
             "created_at": dt.datetime.now(dt.timezone.utc)} for i in range(subjects)])
    accounts.create_user(session, actor, "benchmon", "bench password 1", must_change_password=False)
    accounts.grant_role(session, actor, "benchmon", study.id, "monitor")
    session.close()
    client = app.test_client()
    client.post("/login", data={"username": "benchmon", "password": "bench password 1"})
    times = []
    for i in range(requests):
        start = time.perf_counter()
        response = client.get(f"/studies/{study.id}/subjects?page={1 + i * 7}")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    overdue_start = time.perf_counter()
    assert client.get(f"/studies/{study.id}/subjects?overdue=1").status_code == 200
    overdue = time.perf_counter() - overdue_start
    app.extensions["ecrf_db"].engine.dispose()
    engine.dispose()
    return times, overdue


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    for kind in kinds:
        with database(kind) as url:
            form, events, service, plain = bench_saves(url, args.saves)
        ratio = statistics.median(service) / statistics.median(plain)
        print(f"[{kind}] audited save of {form.id!r} ({len(form.fields)} fields, {events} audit events), "
              f"{args.saves} saves: service median {statistics.median(service) * 1000:.2f} ms, "
              f"p95 {pct(service, 0.95) * 1000:.2f} ms; plain insert median "
              f"{statistics.median(plain) * 1000:.2f} ms, p95 {pct(plain, 0.95) * 1000:.2f} ms; "
              f"ratio {ratio:.2f}x (target <= 3x)")
        with database(kind) as url:
            times, overdue = bench_matrix(url, args.subjects)
        print(f"[{kind}] subject matrix, {args.subjects} subjects: median page "
              f"{statistics.median(times) * 1000:.1f} ms, p95 {pct(times, 0.95) * 1000:.1f} ms "
              f"(target < 150 ms on SQLite); overdue filter {overdue * 1000:.1f} ms")


if __name__ == "__main__":
    main()
