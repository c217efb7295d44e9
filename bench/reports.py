"""Benchmark: SAE report rendering, casebook throughput, and memory across a site of casebooks.

    .venv/bin/python bench/reports.py [--subjects 100] [--repeat 9]

Prints, for one run on this machine:

* the median time to render one SAE report (a real one, built from the database as
  ``issue_sae_report`` builds it) as a ratio to WeasyPrint rendering a minimal one-page HTML document
  in the same run, so the figure does not depend on the machine's speed;
* casebook throughput in pages per second, for a subject whose casebook is about 100 pages;
* resident memory while writing one casebook per subject for a site of ``--subjects`` subjects, the
  way ``ecrf casebook`` does: it should stay flat (no growth with the number of casebooks).

Everything runs against a throwaway SQLite database and study in a temporary folder; nothing here is
part of the test run.
"""
import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

YN = {"type": "string", "enum": ["Y", "N"], "x-ecrf": {"labels": {"Y": "Yes", "N": "No"}}}
TEXT = {"type": "string", "maxLength": 4000}
AE_VARIABLES = ("aeterm", "aestdat", "aeendat", "aeongo", "aetoxgr", "aeser", "aesdth", "aeslife",
                "aeshosp", "aesdisab", "aescong", "aesmie", "aerel", "aeacn", "aeout", "aecontrt",
                "saeawdtc", "saenarr", "saehist")


def _form(title, properties):
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, "type": "object",
            "properties": properties}


def write_study(folder):
    """A small study with CDASH AE and CM logs, demographics and exposure."""
    ae = {name: dict(TEXT, title=name) for name in AE_VARIABLES}
    ae.update({name: dict(YN, title=name) for name in ("aeongo", "aeser", "aesdth", "aeslife", "aeshosp",
                                                       "aesdisab", "aescong", "aesmie", "aecontrt")})
    ae["aetoxgr"] = {"title": "CTCAE grade", "type": "integer", "enum": [1, 2, 3, 4, 5]}
    ae["saeawdtc"] = {"title": "Investigator aware", "type": "string", "format": "date-time"}
    forms = {
        "study": {"id": "bench", "title": "Benchmark study",
                  "protocol": {"number": "BENCH-1", "sponsor": "Bench"},
                  "arms": [{"id": "a", "label": "Active"}, {"id": "p", "label": "Placebo"}],
                  "blinding": {"masking": "double"},
                  "sites": [{"id": "01", "name": "Rigshospitalet", "timezone": "Europe/Copenhagen",
                             "country": "DK"}],
                  "safety": {"ae_form": "ae"},
                  "visits": [{"id": "screening", "label": "Screening", "day": -7, "forms": ["dm"]},
                             {"id": "day0", "label": "Day 0", "day": 0, "forms": ["ex"]}],
                  "log_forms": ["ae", "cm"]},
        "ae": _form("Adverse events", ae),
        "cm": _form("Concomitant medications", {n: dict(TEXT, title=n) for n in
                                                ("cmtrt", "cmindc", "cmdstxt", "cmstdat", "cmendat")}),
        "dm": _form("Demographics", {"sex": {"title": "Sex", "type": "string", "enum": ["M", "F"]},
                                     "age": {"title": "Age", "type": "integer"}}),
        "ex": _form("Study treatment", {"exstdtc": {"title": "Date", "type": "string", "format": "date"},
                                        "exkit": dict(TEXT, title="Kit")}),
    }
    folder.mkdir(parents=True)
    for name, doc in forms.items():
        (folder / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


def serious_ae(i):
    return {"aeterm": f"Salivary gland swelling {i}", "aestdat": "2026-11-19", "aeongo": "Y", "aetoxgr": 3,
            "aeser": "Y", "aesdth": "N", "aeslife": "N", "aeshosp": "Y", "aesdisab": "N", "aescong": "N",
            "aesmie": "N", "aerel": "POSSIBLY RELATED", "aeacn": "NOT APPLICABLE",
            "aeout": "RECOVERING/RESOLVING", "aecontrt": "Y", "saeawdtc": "2026-11-20T09:30:00+01:00",
            "saenarr": ("Hævelse af glandula submandibularis; 患者出现唾液腺肿胀，已住院治疗。 " * 12).strip(),
            "saehist": "Strålebehandling 2019."}


def add_subject(session, actor, key, ae_entries=1, cm_entries=3):
    from ecrf.capture.service import enrol_subject, save_form

    enrol_subject(session, actor, "bench", "01", key)
    save_form(session, actor, "bench", key, "screening", "dm", {"sex": "F", "age": 61}, complete=True)
    save_form(session, actor, "bench", key, "day0", "ex", {"exstdtc": "2026-11-18", "exkit": "K-1"},
              complete=True)
    for i in range(cm_entries):
        save_form(session, actor, "bench", key, "", "cm",
                  {"cmtrt": f"Pilocarpin {i}", "cmindc": "Mundtørhed", "cmdstxt": "5 mg",
                   "cmstdat": "2025-01"},
                  complete=True)
    for i in range(ae_entries):
        save_form(session, actor, "bench", key, "", "ae", serious_ae(i + 1), complete=True)


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median_seconds(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100, help="casebooks in the memory run (100)")
    parser.add_argument("--repeat", type=int, default=9, help="renders per median (9)")
    parser.add_argument("--pages", type=int, default=100, help="target casebook size in pages (100)")
    args = parser.parse_args(argv)

    import weasyprint

    from ecrf import migrate
    from ecrf.actor import Actor
    from ecrf.capture.service import save_form
    from ecrf.db import Database
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.reports import casebook, commands, pdf, sae, service

    work = Path(tempfile.mkdtemp(prefix="ecrf-bench-"))
    db = Database(f"sqlite:///{work / 'bench.sqlite3'}")
    migrate.upgrade(db.engine)
    session = db.sessions()
    actor = Actor.cli()
    publish_study(session, actor, load_study(write_study(work / "bench")))

    # 1. One SAE report, against a minimal document rendered in the same run.
    add_subject(session, actor, "01-001")
    ae = service.locate_ae(session, "bench", "01-001", "ae", 1)
    content = sae.build_content(sae.gather(session, ae.study, ae.spec, ae.subject, ae.record,
                                           {"name": "Bench", "username": "bench", "role": "investigator"}))
    content["changes"] = None
    content["report"] = {"number": "BENCH-SAE-001", "version": 1, "type": "initial", "type_label": "Initial",
                         "issued_at": "", "issued_at_utc": "", "previous": None, "due": "", "hours": 24,
                         "overdue": False}
    minimal = "<!doctype html><html><body><p>Serious adverse event report</p></body></html>"
    weasyprint.HTML(string=minimal).write_pdf()                      # warm up fonts and caches
    sae_pdf = pdf.render_pdf(service.TEMPLATE, {"c": content})
    base = median_seconds(lambda: weasyprint.HTML(string=minimal).write_pdf(), args.repeat)
    report = median_seconds(lambda: pdf.render_pdf(service.TEMPLATE, {"c": content}), args.repeat)
    start = time.perf_counter()
    service.issue_sae_report(session, actor, "bench", "01-001", "ae", 1)
    issued = time.perf_counter() - start

    progress(f"SAE report: {report * 1000:.0f} ms; building a casebook of about {args.pages} pages")
    # 2. Casebook throughput for a casebook of about --pages pages: start small, then add AE entries
    # (each with its audit trail) by linear extrapolation until the casebook is near the target size.
    add_subject(session, actor, "01-002", ae_entries=2, cm_entries=10)
    study = ae.study
    subject = service.get_subject(session, study, "01-002")
    entries, history = 2, []
    while True:
        context = casebook.casebook_context(session, study, subject)
        book = pdf.render_pdf(casebook.TEMPLATE, {"c": context})
        progress(f"casebook with {entries} AE entries: {book.pages} pages")
        history.append((entries, book.pages))
        if book.pages >= args.pages * 0.95 or len(history) > 4:
            break
        (e0, p0), (e1, p1) = (history[-2] if len(history) > 1 else (0, 1)), history[-1]
        per_entry = max((p1 - p0) / (e1 - e0), 0.1)
        more = max(1, round((args.pages - p1) / per_entry))
        for i in range(more):
            save_form(session, actor, "bench", "01-002", "", "ae", serious_ae(entries + i + 1), complete=True)
        entries += more
    book_time = median_seconds(lambda: pdf.render_pdf(casebook.TEMPLATE, {"c": context}), 3)
    progress(f"casebook: {book.pages} pages in {book_time:.1f} s; adding {args.subjects - 2} subjects")
    # 3. Memory across a site of --subjects casebooks, written as ``ecrf casebook`` writes them.
    for n in range(3, args.subjects + 2):  # 01-002 (the big casebook) is not part of the site run
        add_subject(session, actor, f"01-{n:03d}", ae_entries=2, cm_entries=3)
    session.close()
    session = db.sessions()
    out = work / "casebooks"
    out.mkdir()
    keys = [k for k in commands.site_subjects(session, "bench", "01") if k != "01-002"]
    progress(f"writing {len(keys)} casebooks")
    samples, pages = [], 0
    start = time.perf_counter()
    for i, key in enumerate(keys, start=1):
        pages += commands.write_casebook(session, actor, commands.OPERATOR_READER, "bench", key, out)
        if i % max(1, len(keys) // 10) == 0 or i == len(keys):
            gc.collect()
            samples.append((i, rss_mib()))
    site_time = time.perf_counter() - start
    session.close()

    print(f"WeasyPrint {weasyprint.__version__}, Python {sys.version.split()[0]}, medians of {args.repeat}")
    print(f"minimal one-page document:   {base * 1000:8.1f} ms")
    print(f"SAE report ({sae_pdf.pages} pages, Danish + Chinese narrative): {report * 1000:8.1f} ms"
          f"  = {report / base:5.1f} x the minimal document")
    print(f"issue_sae_report (read, render, hash, store, audit): {issued * 1000:8.1f} ms")
    print(f"casebook of {book.pages} pages ({entries} AE entries + 10 CM entries + audit trail): "
          f"{book_time:6.2f} s = {book.pages / book_time:5.1f} pages/s")
    print(f"site of {len(keys)} casebooks ({pages} pages): {site_time:6.1f} s, "
          f"{pages / site_time:5.1f} pages/s")
    print("resident memory after n casebooks: " + ", ".join(f"{i}: {mib:.0f} MiB" for i, mib in samples))
    first, last = samples[0][1], samples[-1][1]
    print(f"growth from casebook {samples[0][0]} to {samples[-1][0]}: {last - first:+.1f} MiB "
          f"({(last - first) / first * 100:+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
