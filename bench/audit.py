"""Audit-log benchmarks on SQLite and PostgreSQL. Prints figures; not part of the test run.

    .venv/bin/python bench/audit.py [--events 1000000] [--saves 300] [--no-postgres] [--no-sqlite]

For each database (a fresh one, created and dropped by the bench; PostgreSQL from
ECRF_TEST_POSTGRES_URL or the default local server):

1. **Appends inside ordinary saves**: ``save_form`` calls on the demo study (creates and updates with a
   reason), each its own committed transaction; events appended per second, and the share of the
   save spent in ``audit.append_many``.
2. **Verify throughput** over ``--events`` events. The log is filled with prebuilt, correctly chained
   events (realistic field changes of 10,000 form records of 5,000 subjects, interleaved as a
   running trial writes them) by bulk insert, with the subjects and records they describe, so the
   full ``ecrf audit verify`` passes. Measured in the same run:

   * *baseline*: read the same rows through the same streaming query and sha256 the same content
     (the row's values joined as text: the floor any verify pays), in one process;
   * *chain + replay*: ``verify_chain`` with the replay fed in the same pass (what verify does per
     event), in one process, and with ``jobs=2``: a worker process checks ranges of the chain while
     this one replays (``audit.parallel``; what ``ecrf audit verify`` does on a machine with 2 CPUs);
   * *full verify*: ``verify_database`` (chain, replay, then every record and subject compared), with
     1 and with 2 processes.

   Wall-clock events/s, and events per CPU second of all the processes (this one and its workers;
   not the PostgreSQL server's), best of two rounds.
   Targets: chain + replay at least 0.5 of the baseline, and 200,000 events/s on SQLite.
3. **Memory** (tracemalloc peak, of this process) of chain + replay at a quarter of the events and at
   all of them, in one process and with a worker, and of what a worker does with a range (here one
   as long as the log): flat, since rows are streamed and the replay holds only the current state of
   the records.
4. **One subject's history** with the full log: ``audit_view.query_events`` filtered by subject
   (first page, 50 events), and the whole page ``/studies/demo/audit?subject=…`` through the app.
   Target: under 50 ms.
"""
import argparse
import datetime as dt
import hashlib
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import ReplayState, head, verify_chain  # noqa: E402
from audit.canonical import GENESIS, hash_values, value_text  # noqa: E402
from audit.parallel import check_range  # noqa: E402
from audit.replay import READS  # noqa: E402
from audit.verify import COLUMNS, head_seq, scan_events  # noqa: E402
from ecrf.scratch import postgres_answers, postgres_url, scratch_database  # noqa: E402
from ecrf import audit_view, create_app, migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.audit_check import verify_database  # noqa: E402
from ecrf.auth import accounts  # noqa: E402
from ecrf.capture import service  # noqa: E402
from ecrf.db import make_engine, make_session_factory  # noqa: E402
from ecrf.definitions import load_study  # noqa: E402
from ecrf.definitions.publish import publish_study  # noqa: E402
from ecrf.models import FormRecord, FormVersion, Site, Study, Subject  # noqa: E402
from ecrf.paths import resource  # noqa: E402
from ecrf.studies import add_site  # noqa: E402

POSTGRES = postgres_url()
STUDY = "demo"
SITES = ("01", "02", "03", "04")
SUBJECTS = 5000
VISITS = ("baseline", "week4")
PASSWORD = "bench password 2026"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def database(kind):
    """A fresh database URL of ``kind``, removed afterwards."""
    return scratch_database(kind, admin_url=POSTGRES, prefix="ecrf_bench")


def postgres_available():
    return postgres_answers(POSTGRES)


# --- 1. appends inside ordinary saves -------------------------------------------------------------

def bench_saves(sessions, saves):
    """Saves through the capture service; returns (saves/s, events/s, share of time in append_many)."""
    actor = Actor.system("bench")
    spent = [0.0]
    real_append_many = service.append_many

    def timed_append_many(connection, events):
        start = time.perf_counter()
        try:
            return real_append_many(connection, events)
        finally:
            spent[0] += time.perf_counter() - start

    with sessions() as session:
        subjects = [service.enrol_subject(session, actor, STUDY, SITES[0]).key for _ in range(saves // 2)]
        before = head(session.connection())[0]
        session.commit()
    service.append_many = timed_append_many
    try:
        start = time.perf_counter()
        for n in range(saves):
            subject = subjects[n % len(subjects)]
            first = n < len(subjects)
            with sessions() as session:
                service.save_form(session, actor, STUDY, subject, "baseline", "vitals",
                                  {"sbp": 100 + n % 100, "assessed": "2026-11-02"},
                                  reason=None if first else "re-measured")
        elapsed = time.perf_counter() - start
    finally:
        service.append_many = real_append_many
    with sessions() as session:
        appended = head(session.connection())[0] - before
    return saves / elapsed, appended / elapsed, spent[0] / elapsed


# --- 2. a large log, bulk inserted ----------------------------------------------------------------

def _ts(n):
    return (dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=n)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


class LogBuilder:
    """Prebuilt, correctly chained events continuing the stored log: 5,000 subjects enrolled at four
    sites, then field changes to their 10,000 vitals records in turn (as a running trial interleaves
    them). ``store_state`` then stores the subjects and records in the state the events leave."""

    def __init__(self, session):
        study = session.scalar(select(Study).where(Study.key == STUDY))
        sites = {s.key: s.id for s in session.scalars(select(Site).where(Site.study_id == study.id))}
        self.version = session.scalar(select(FormVersion).where(FormVersion.form_key == "vitals")
                                      .order_by(FormVersion.id.desc()))
        self.label = f"{self.version.form_key}@{self.version.content_hash[:12]}"
        self.seq, self.prev = head(session.connection())
        first_subject = (session.scalar(select(func.max(Subject.id))) or 0) + 1
        first_record = (session.scalar(select(func.max(FormRecord.id))) or 0) + 1
        session.commit()
        self.rng = random.Random(2026)
        self.users = [(100 + i, f"user{i}", role) for i, role in enumerate(("site_staff", "investigator") * 5)]
        self.subjects, self.records = [], []
        for n in range(SUBJECTS):
            site = SITES[n % len(SITES)]
            key = f"B{site}-{n:05}"
            self.subjects.append({"id": first_subject + n, "study_id": study.id, "site_id": sites[site],
                                  "key": key, "state": "enrolled", "site": site})
            for visit in VISITS:
                self.records.append({"id": first_record + len(self.records), "subject_id": first_subject + n,
                                     "site": site, "subject": key, "visit": visit, "step": 0, "data": {},
                                     "status": None})
        self.enrolled = 0
        self.turn = 0

    def _event(self, action, site, subject, visit=None, record=None, field=None, old=None, new=None,
               reason=None):
        self.seq += 1
        seq = self.seq
        actor_id, actor_name, role = self.users[seq % len(self.users)]
        values = (seq, _ts(seq), actor_id, actor_name, role, action, STUDY, site, subject, visit,
                  "vitals" if record else None, self.label if record else None, record, field,
                  value_text(old), value_text(new), reason, f"10.0.{seq % 7}.{seq % 250}", USER_AGENT,
                  "page", self.prev)
        self.prev = hash_values(values)
        return (*values, self.prev)

    def _next(self):
        if self.enrolled < len(self.subjects):
            s = self.subjects[self.enrolled]
            self.enrolled += 1
            return self._event("enrol", s["site"], s["key"], field="/state", new="enrolled")
        r = self.records[self.turn]
        self.turn = (self.turn + 1) % len(self.records)
        data, step = r["data"], r["step"]
        r["step"] += 1
        where = {"site": r["site"], "subject": r["subject"], "visit": r["visit"], "record": r["id"]}
        if step == 0:
            data["sbp"] = self.rng.randint(90, 180)
            return self._event("create", field="/sbp", new=data["sbp"], **where)
        if step == 1:
            data["assessed"] = "2026-11-02"
            return self._event("create", field="/assessed", new=data["assessed"], **where)
        if step == 2:
            r["status"] = "draft"
            return self._event("status_change", new="draft", **where)
        old, data["sbp"] = data["sbp"], self.rng.randint(90, 180)
        return self._event("update", field="/sbp", old=old, new=data["sbp"], reason=f"re-measured ({step})",
                           **where)

    def batches(self, upto, size=20_000):
        """Rows (tuples in COLUMNS order) until the log holds ``upto`` events."""
        rows = []
        while self.seq < upto:
            rows.append(self._next())
            if len(rows) >= size:
                yield rows
                rows = []
        if rows:
            yield rows

    def store_state(self, session):
        created = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        session.execute(insert(Subject), [
            {k: v for k, v in s.items() if k != "site"} | {"created_at": created}
            for s in self.subjects[:self.enrolled]])
        session.execute(insert(FormRecord), [
            {"id": r["id"], "subject_id": r["subject_id"], "visit_key": r["visit"], "form_key": "vitals",
             "seq": 1, "form_version_id": self.version.id, "data": r["data"], "missing": {},
             "status": r["status"], "version": 1} for r in self.records if r["step"] > 0])
        session.commit()


def bulk_insert(engine, batches):
    """Insert prebuilt rows fast: executemany on SQLite, COPY on PostgreSQL."""
    names = ", ".join(COLUMNS)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        if engine.dialect.name == "sqlite":
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            for rows in batches:
                cursor.executemany(f"INSERT INTO audit_event ({names}) VALUES ({', '.join('?' * len(COLUMNS))})",
                                   rows)
            cursor.execute("COMMIT")
        else:
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY audit_event ({names}) FROM STDIN") as copy:
                    for rows in batches:
                        for row in rows:
                            copy.write_row(row)
            raw.commit()


def analyze(engine):
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE audit_event"))


# --- 3. verify throughput and memory --------------------------------------------------------------

def read_baseline(connection):
    """Read every event exactly as verify reads it (``scan_events``) and sha256 its content (the
    row's values joined as text): the floor any verify pays."""
    sha = hashlib.sha256
    count = 0
    for row in scan_events(connection):
        sha("".join(map(str, row)).encode("utf-8")).hexdigest()
        count += 1
    return count


def chain_and_replay(connection, jobs=1):
    """What verify does per event: the chain walk feeding the replay (``jobs`` processes)."""
    state = ReplayState()
    result = verify_chain(connection, on_event=state.apply, jobs=jobs, needs=READS)
    assert result.ok, result.problem
    return result.count


def check_whole_log(engine):
    """What a worker does for each range it is handed (``audit.parallel.check_range``), over the whole
    log at once: its memory is a worker's, whatever the length of its ranges."""
    with engine.connect() as conn:
        head = head_seq(conn)
        first_prev, result = check_range(conn, 0, head, head)
    assert result.ok and first_prev == GENESIS, result.problem


def full_verify(sessions, jobs):
    with sessions() as session:
        report = verify_database(session, jobs=jobs)
    assert report.ok, report.problem
    return report


def _cpu():
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(fn, *args):
    """``(value, wall seconds, CPU seconds)``; the CPU time of this process and of the worker
    processes it started (and waited for), the steadier figure on a shared machine."""
    wall, cpu = time.perf_counter(), _cpu()
    value = fn(*args)
    return value, time.perf_counter() - wall, _cpu() - cpu


def traced_peak(fn, *args):
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_verify(engine, sessions, rounds=2):
    """Events per second (wall, CPU) of each reading, best of ``rounds``, interleaved in one run."""
    best = {}

    def measure(name, fn, *args):
        value, wall, cpu = timed(fn, *args)
        count = value if isinstance(value, int) else value.events  # a count, or a VerifyReport
        old = best.get(name, (0, 0))
        best[name] = (max(old[0], count / wall), max(old[1], count / cpu))
        return value

    for _ in range(rounds):
        with engine.connect() as conn:
            count = measure("baseline", read_baseline, conn)
        for jobs in (1, 2):
            with engine.connect() as conn:
                measure(f"walk{jobs}", chain_and_replay, conn, jobs)
        for jobs in (1, 2):
            report = measure(f"full{jobs}", full_verify, sessions, jobs)
    return count, report, best


# --- 4. one subject's history --------------------------------------------------------------------

def bench_history(url, sessions, runs=30):
    actor = Actor.system("bench")
    with sessions() as session:
        accounts.create_user(session, actor, "bench-monitor", PASSWORD, must_change_password=False)
        accounts.grant_role(session, actor, "bench-monitor", STUDY, "monitor")
        user = accounts.get_user(session, "bench-monitor")
        scope = audit_view.scope_for(session, user, session.scalar(select(Study).where(Study.key == STUDY)))
    rng = random.Random(7)
    keys = [f"B{SITES[n % len(SITES)]}-{n:05}" for n in rng.sample(range(SUBJECTS), runs)]
    domain = []
    for key in keys:
        with sessions() as session:
            start = time.perf_counter()
            page = audit_view.query_events(session, scope, audit_view.AuditFilters(subject=key))
            domain.append(time.perf_counter() - start)
            assert page.events
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "bench", "DATABASE_URL": url,
                      "WTF_CSRF_ENABLED": False})
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    response = client.post("/login", data={"username": "bench-monitor", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    pages = []
    for key in keys:
        start = time.perf_counter()
        response = client.get(f"/studies/{STUDY}/audit?subject={key}")
        pages.append(time.perf_counter() - start)
        assert response.status_code == 200 and key in response.get_data(as_text=True)
    app.extensions["ecrf_db"].engine.dispose()
    return statistics.median(domain), max(domain), statistics.median(pages), max(pages)


# --- the run ---------------------------------------------------------------------------------------

def run(kind, events, saves):
    print(f"\n== {kind} ==", flush=True)
    with database(kind) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        with sessions() as session:
            publish_study(session, Actor.system("bench"), load_study(resource("forms") / STUDY))
            for site in SITES:
                add_site(session, Actor.system("bench"), STUDY, site, f"Bench site {site}")

        per_save, per_event, share = bench_saves(sessions, saves)
        print(f"appends inside saves: {per_event:,.0f} events/s ({per_save:,.0f} saves/s, "
              f"{share:.0%} of the save time in append_many)", flush=True)

        quarter = max(events // 4, 1)
        start = time.perf_counter()
        with sessions() as session:
            builder = LogBuilder(session)
        bulk_insert(engine, builder.batches(quarter))
        analyze(engine)
        peaks = {}
        for jobs in (1, 2):
            with engine.connect() as conn:
                peaks[jobs] = [traced_peak(chain_and_replay, conn, jobs)]
        worker_peaks = [traced_peak(check_whole_log, engine)]
        bulk_insert(engine, builder.batches(events))
        with sessions() as session:
            builder.store_state(session)
        analyze(engine)
        print(f"log filled to {events:,} events in {time.perf_counter() - start:.0f} s", flush=True)
        for jobs in (1, 2):
            with engine.connect() as conn:
                peaks[jobs].append(traced_peak(chain_and_replay, conn, jobs))
        worker_peaks.append(traced_peak(check_whole_log, engine))

        load = os.getloadavg()[0]
        count, report, best = bench_verify(engine, sessions)
        base_wall, base_cpu = best["baseline"]
        print(f"verify over {count:,} events ({report.records:,} records, {report.subjects:,} subjects; "
              f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after), events/s wall-clock "
              f"(per CPU second, all processes) and ratio to the baseline:")
        for name, label in (("baseline", "baseline (read + sha256)"),
                            ("walk1", "chain + replay, 1 process"), ("walk2", "chain + replay, 2 processes"),
                            ("full1", "full verify, 1 process"), ("full2", "full verify, 2 processes")):
            wall, cpu = best[name]
            print(f"  {label:<29} {wall:>9,.0f} ({cpu:>9,.0f})   ratio {wall / base_wall:.2f} "
                  f"({cpu / base_cpu:.2f})")
        for jobs, (small, large) in peaks.items():
            print(f"memory (tracemalloc peak of this process, chain + replay, {jobs} process{'es' * (jobs > 1)}): "
                  f"{small / 2**20:.1f} MiB at {quarter:,} events, {large / 2**20:.1f} MiB at {events:,} events",
                  flush=True)
        print(f"memory (tracemalloc peak) of a worker's check of one range as long as the log: "
              f"{worker_peaks[0] / 2**20:.1f} MiB at {quarter:,} events, {worker_peaks[1] / 2**20:.1f} MiB at "
              f"{events:,} events", flush=True)

        median, worst, page_median, page_worst = bench_history(url, sessions)
        print(f"one subject's history with {events:,} events: query {median * 1000:.1f} ms median "
              f"({worst * 1000:.1f} ms worst); whole page {page_median * 1000:.1f} ms median "
              f"({page_worst * 1000:.1f} ms worst)", flush=True)
        engine.dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"ecrf audit bench: {args.events:,} events, {args.saves} saves; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    if not args.no_sqlite:
        run("sqlite", args.events, args.saves)
    if not args.no_postgres:
        if postgres_available():
            run("postgresql", args.events, args.saves)
        else:
            print(f"\n== postgresql == skipped: no server at {POSTGRES}")


if __name__ == "__main__":
    main()
