"""Subject casebooks: every form of a subject with its values, missing-data flags and signatures,
and the subject's audit trail as an appendix, as one PDF (templates/reports/casebook.html).

Visits come in schedule order, then visits not in the schedule, then the log forms entry by entry.
A field reads its value (code-list label and unit), else its missing-data flag ("Not done: reason"),
else "missing" when the form requires it. The arm, and audit values that would reveal it, are shown
only when ``can_see_arm`` allows the casebook's reader role.
"""
import dataclasses
import hashlib
import json
import zoneinfo

from sqlalchemy import select

from audit import Action, append, audit_event
from ecrf.capture.service import get_subject
from ecrf.db import utcnow, write_transaction
from ecrf.models import FormRecord, Subject, SubjectVisit
from ecrf.randomization import can_see_arm
from ecrf.reports.pdf import render_pdf
from ecrf.reports.sae import label, local_time, parse_datetime, record_signature
from ecrf.review.signatures import signatures_of
from ecrf.studies import definition, get_site, get_study

TEMPLATE = "reports/casebook.html"
#: Audit actions whose values can name an arm.
_ARM_ACTIONS = {str(Action.RANDOMIZE), str(Action.UNBLIND)}
BLINDED = "(blinded)"
_MISSING_LABELS = {"not_done": "Not done", "unknown": "Unknown", "not_applicable": "Not applicable",
                   "asked_unknown": "Asked, unknown"}


def _empty(value):
    return value is None or value == "" or value == [] or value == {}


def _value_text(form_def, field, value):
    if field.schema.get("type") == "array" and isinstance(value, list) and value \
            and all(isinstance(v, dict) for v in value):
        return None  # a repeating group: shown as a table
    text = label(form_def, field.name, value)
    unit = field.ecrf.get("unit")
    return f"{text} {unit}" if text and unit else text


def _group(field, rows):
    items = field.schema.get("items", {})
    columns = list(items.get("properties", {}))
    titles = [items["properties"][c].get("title", c) for c in columns]
    body = []
    for row in rows:
        cells = []
        for column in columns:
            schema = items["properties"][column]
            value = row.get(column)
            labels = schema.get("x-ecrf", {}).get("labels", {})
            text = "" if _empty(value) else labels.get(str(value), json.dumps(value, ensure_ascii=False)
                                                        if isinstance(value, (dict, list)) else str(value))
            unit = schema.get("x-ecrf", {}).get("unit")
            cells.append(f"{text} {unit}" if text and unit else text)
        body.append(cells)
    return {"titles": titles, "rows": body}


def form_rows(form_def, record):
    """One row per field: title, value text (or a repeating group table), flag."""
    data, missing = record.data or {}, record.missing or {}
    rows = []
    for field in form_def.fields:
        value = data.get(field.name)
        flag = missing.get(f"/{field.name}")
        group = None
        if not _empty(value):
            text = _value_text(form_def, field, value)
            if text is None:
                group, text = _group(field, value), ""
            state = ""
        elif flag:
            kind = flag.get("flag", "") if isinstance(flag, dict) else str(flag)
            reason = flag.get("reason") if isinstance(flag, dict) else None
            text = ""
            state = _MISSING_LABELS.get(kind, kind.replace("_", " ").capitalize())
            state += f": {reason}" if reason else ""
        elif field.required:
            text, state = "", "missing"
        else:
            text, state = "", ""
        rows.append({"title": field.title, "name": field.name, "value": text, "group": group, "flag": state})
    return rows


def _audit_value(text, hide):
    if text is None:
        return ""
    if hide:
        return BLINDED
    value = json.loads(text)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _short_time(ts, timezone):
    """An audit timestamp in the site's zone, to the second (the appendix names the zone once)."""
    moment = parse_datetime(ts)
    try:
        zone = zoneinfo.ZoneInfo(timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}" if moment else ts


def audit_trail(session, study_key, subject_key, timezone, show_arm):
    """The subject's audit events, oldest first, as rows for the appendix."""
    rows = []
    for event in session.execute(
            select(audit_event).where(audit_event.c.study == study_key, audit_event.c.subject == subject_key)
            .order_by(audit_event.c.seq)).mappings():
        hide = not show_arm and (event["action"] in _ARM_ACTIONS or event["field"] == "/arm")
        rows.append({
            "seq": event["seq"], "when": _short_time(event["ts"], timezone),
            "who": event["actor_name"] or "", "role": (event["actor_role"] or "").replace("_", " "),
            "action": event["action"].replace("_", " "),
            "where": " ".join(part for part in (event["visit"], event["form"],
                                                f"#{event['record']}" if event["record"] else None) if part),
            "field": event["field"] or "", "old": _audit_value(event["old_value"], hide),
            "new": _audit_value(event["new_value"], hide), "reason": event["reason"] or "",
        })
    return rows


def casebook_context(session, study, subject, reader="investigator", generated_by="", now=None):
    """Everything the casebook template shows for ``subject``; ``reader`` (a User or a role) decides
    through ``can_see_arm`` whether arms are shown."""
    spec = definition(study)
    timezone = subject.site.timezone or "UTC"
    show_arm = can_see_arm(session, reader, study)
    records = session.scalars(select(FormRecord).where(FormRecord.subject_id == subject.id)
                              .order_by(FormRecord.id)).all()
    signatures = signatures_of(session, subject, records)
    by_visit = {}
    for record in records:
        by_visit.setdefault(record.visit_key, []).append(record)

    def section(title, recs):
        forms = []
        for record in sorted(recs, key=lambda r: (r.form_key, r.seq)):
            form_def = spec.forms.get(record.form_key)
            if form_def is None:
                continue
            entry = f" · entry {record.seq}" if record.visit_key == "" else ""
            forms.append({"title": form_def.title + entry,
                          "status": record.status, "version": record.version,
                          "form_version": record.form_version.label,
                          "updated": local_time(record.updated_at, timezone),
                          "rows": form_rows(form_def, record),
                          "signature": record_signature(session, record, timezone, signatures)})
        return {"title": title, "forms": forms}

    held = {v.visit_key: v for v in session.scalars(select(SubjectVisit).where(
        SubjectVisit.subject_id == subject.id))}

    def visit_title(key, label):
        visit = held.get(key)
        if visit is not None and visit.label:
            label = visit.label
        return f"{label} · {visit.visit_date:%Y-%m-%d}" if visit is not None and visit.visit_date else label

    sections = []
    for visit in spec.visits:
        if visit.id in by_visit:
            sections.append(section(visit_title(visit.id, visit.label), by_visit.pop(visit.id)))
    logs = by_visit.pop("", [])
    for key in sorted(by_visit):
        sections.append(section(visit_title(key, f"Visit {key} (not in the schedule)"), by_visit[key]))
    for form_key in spec.log_forms:
        entries = [r for r in logs if r.form_key == form_key]
        if entries:
            sections.append(section(f"Log: {spec.forms[form_key].title}", entries))
    arm = None
    if subject.arm:
        arm = next((a.get("label", a["id"]) for a in spec.document.get("arms", ()) if a["id"] == subject.arm),
                   subject.arm) if show_arm else BLINDED
    return {
        "study": {"key": study.key, "title": spec.title,
                  "protocol": (spec.document.get("protocol") or {}).get("number", "")},
        "site": {"key": subject.site.key, "name": subject.site.name, "timezone": timezone},
        "subject": {"key": subject.key, "state": subject.state.replace("_", " "),
                    "reason": subject.state_reason or "", "arm": arm,
                    "enrolled": local_time(subject.created_at, timezone)},
        "sections": sections,
        "forms": sum(len(s["forms"]) for s in sections),
        "audit": audit_trail(session, study.key, subject.key, timezone, show_arm),
        "generated": local_time(now or utcnow(), timezone), "generated_by": generated_by,
    }


@dataclasses.dataclass(frozen=True)
class Casebook:
    data: bytes
    pages: int
    sha256: str


def export_casebook(session, actor, study_key, subject_key, reader="investigator"):
    """Render one subject's casebook and record the export (with the PDF's sha256) in the audit log."""
    study = get_study(session, study_key)
    subject = get_subject(session, study, subject_key)
    context = casebook_context(session, study, subject, reader, actor.name)
    rendered = render_pdf(TEMPLATE, {"c": context})
    digest = hashlib.sha256(rendered.data).hexdigest()
    with write_transaction(session):
        append(session.connection(), actor.event(
            Action.EXPORT, study=study.key, site=subject.site.key, subject=subject.key,
            field="/casebook", new={"sha256": digest, "pages": rendered.pages}))
    return Casebook(rendered.data, rendered.pages, digest)


def site_subject_keys(session, study_key, site_key):
    """The subject ids of a site, in id order."""
    study = get_study(session, study_key)
    site = get_site(session, study, site_key)
    return list(session.scalars(select(Subject.key).where(Subject.study_id == study.id,
                                                          Subject.site_id == site.id).order_by(Subject.key)))
