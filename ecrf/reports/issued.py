"""What the audit log records of an issued SAE report and of its receipt, and the proof that the
stored ones are still what was issued.

The service writes ``issued_value(report)`` when it issues a report (field
``/sae-reports/<number>/<version>``) and ``received_value(receipt)`` when the sponsor marks it
received (``.../received``). ``ecrf audit verify`` recomputes both from the stored rows (the PDF's
sha256 from its bytes) and compares them with the events replayed from the log: a report or receipt
that differs, that no event explains, or that the log has and the database lacks is named. Events
written before a key was added to ``issued_value`` are compared on the keys they carry.
"""
import datetime as dt
import hashlib
import re

from sqlalchemy import select

from audit import audit_event
from audit.canonical import dumps
from ecrf.models import SaeReceipt, SaeReport, Site, Study, Subject

_FIELD = re.compile(r"/sae-reports/(?P<number>[^/]+)/(?P<version>\d+)(?P<received>/received)?")


def report_field(number, version):
    """The audit field of an issued report."""
    return f"/sae-reports/{number}/{version}"


def receipt_field(number, version):
    return f"{report_field(number, version)}/received"


def content_sha256(content):
    """sha256 of the canonical JSON of a report's content (what a follow-up is compared with)."""
    return hashlib.sha256(dumps(content).encode("utf-8")).hexdigest()


def _iso(moment):
    return None if moment is None else moment.astimezone(dt.timezone.utc).isoformat()


def issued_value(report, pdf):
    """The value of a report's issue event: ``report`` a SaeReport, ``pdf`` its bytes."""
    return {"number": report.number, "version": report.version, "type": report.report_type,
            "sha256": hashlib.sha256(pdf).hexdigest(), "pages": report.pages, "bytes": len(pdf),
            "content_sha256": content_sha256(report.content), "issued_at": _iso(report.issued_at),
            "due_at": _iso(report.due_at), "awareness_at": _iso(report.awareness_at),
            "record_version": report.record_version}


def received_value(receipt):
    """The value of a receipt's event: when it was received."""
    return _iso(receipt.received_at)


def compare_issued(session, documents, counts):
    """The first report or receipt the log does not explain (a message), or None.

    ``documents`` is the replay's ``{(study, field): ReplayedDocument}``; ``counts["reports"]`` and
    ``counts["receipts"]`` count the ones proven."""
    seen, names = set(), []
    problem = (_compare_reports(session, documents, counts, seen, names)
               or _compare_receipts(session, documents, counts, seen, names)
               or _compare_names(session, names))
    if problem is not None:
        return problem
    for (study, field), logged in sorted(documents.items(), key=lambda item: item[1].seq):
        match = _FIELD.fullmatch(field)
        if match is not None and (study, field) not in seen:
            what = "the receipt of SAE report" if match["received"] else "SAE report"
            return (f"{what} {match['number']} version {match['version']} (study {study}) is in the "
                    f"log (event {logged.seq}) but not stored")
    return None


def _reports_query():
    columns = (SaeReport.id, SaeReport.number, SaeReport.version, SaeReport.report_type, SaeReport.pages,
               SaeReport.content, SaeReport.issued_at, SaeReport.due_at, SaeReport.awareness_at,
               SaeReport.record_version, SaeReport.record_id, SaeReport.issued_by_id, SaeReport.issued_by,
               SaeReport.sha256, SaeReport.pdf, Study.key.label("study"), Site.key.label("site"),
               Subject.key.label("subject"))
    return (select(*columns)
            .join(Study, Study.id == SaeReport.study_id).join(Site, Site.id == SaeReport.site_id)
            .join(Subject, Subject.id == SaeReport.subject_id)
            .order_by(SaeReport.id).execution_options(yield_per=50))


def _compare_reports(session, documents, counts, seen, names):
    # Closed on an early return too: on PostgreSQL this is a server-side cursor.
    with session.execute(_reports_query()) as rows:
        for report in rows:
            key = (report.study, report_field(report.number, report.version))
            seen.add(key)
            label = f"SAE report {report.number} version {report.version} ({report.study} {report.subject})"
            if hashlib.sha256(report.pdf).hexdigest() != report.sha256:
                return f"{label}: the stored PDF does not match its stored sha256"
            logged = documents.get(key)
            if logged is None:
                return f"{label} has no issue event in the log"
            problem = _differs(label, logged, issued_value(report, report.pdf), (report.site, report.subject),
                               report.record_id, report.issued_by_id)
            if problem is not None:
                return problem
            names.append((logged.seq, report.issued_by, label))
            counts["reports"] += 1
    return None


def _compare_receipts(session, documents, counts, seen, names):
    query = (select(SaeReceipt, SaeReport.number, SaeReport.version, SaeReport.record_id, Study.key,
                    Site.key, Subject.key)
             .join(SaeReport, SaeReport.id == SaeReceipt.report_id)
             .join(Study, Study.id == SaeReport.study_id).join(Site, Site.id == SaeReport.site_id)
             .join(Subject, Subject.id == SaeReport.subject_id).order_by(SaeReceipt.id))
    for receipt, number, version, record_id, study, site, subject in session.execute(query):
        key = (study, receipt_field(number, version))
        seen.add(key)
        label = f"the receipt of SAE report {number} version {version} ({study} {subject})"
        logged = documents.get(key)
        if logged is None:
            return f"{label} has no event in the log"
        problem = _differs(label, logged, received_value(receipt), (site, subject), record_id,
                           receipt.received_by_id)
        if problem is not None:
            return problem
        names.append((logged.seq, receipt.received_by, label))
        counts["receipts"] += 1
    return None


def _differs(label, logged, value, place, record_id, actor_id):
    """What differs between a stored document (its value, site and subject, record and actor) and
    the event that issued it, or None."""
    if isinstance(value, dict) and isinstance(logged.value, dict):
        # The PDF's hash first: it says most about what changed.
        for key in sorted(logged.value, key=lambda k: k != "sha256"):
            if logged.value[key] != value.get(key):
                return f"{label}: stored {key} differs from its issue event {logged.seq}"
    elif logged.value != value:
        return f"{label} differs from its event {logged.seq}"
    if (logged.place[1], logged.place[2]) != place or logged.record != record_id:
        return f"{label} is filed under another subject or AE record than its event {logged.seq} says"
    if logged.actor_id != actor_id:
        return f"{label}: stored user differs from the one of its event {logged.seq}"
    return None


def _compare_names(session, names, batch=500):
    """The names printed with each report and receipt are the actor names of their events."""
    for start in range(0, len(names), batch):
        part = names[start:start + batch]
        logged = dict(session.execute(select(audit_event.c.seq, audit_event.c.actor_name)
                                      .where(audit_event.c.seq.in_([seq for seq, _, _ in part]))).all())
        for seq, name, label in part:
            if logged.get(seq) != name:
                return f"{label}: stored name {name!r} differs from the one of its event {seq}"
    return None
