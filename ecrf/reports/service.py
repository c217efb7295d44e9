"""SAE report services: issue a report (initial or follow-up), mark one received, list them.

Each writing service runs in one ``write_transaction`` that stores its row and appends its audit
event together. An issued report is never changed: a new report on the same adverse event is a
follow-up, a new version whose content lists what changed since the previous version; the tables
are append-only (``ecrf.models.append_only``), and ``ecrf audit verify`` proves every stored report
and receipt against its event (``ecrf.reports.issued``). Permission checks belong to the callers (pages, API, CLI)
through ``ecrf.auth.permissions``, as for every service.
"""
import dataclasses
import hashlib

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import selectinload

from audit import Action, append
from ecrf.capture.service import get_record, get_subject
from ecrf.db import utcnow, write_transaction
from ecrf.errors import Conflict, NotFound
from ecrf.models import FormRecord, SaeReceipt, SaeReport, Study, Subject, User
from ecrf.reports import issued, sae
from ecrf.reports.pdf import render_pdf
from ecrf.studies import definition, get_study

TEMPLATE = "reports/sae.html"


@dataclasses.dataclass(frozen=True)
class AeRecord:
    """An AE log record located by study, subject, form and entry number."""

    study: Study
    spec: object
    subject: Subject
    record: FormRecord

    @property
    def form(self):
        return self.spec.forms[self.record.form_key]


def locate_ae(session, study_key, subject_key, form_key, seq):
    """The AE log entry ``seq`` of ``subject_key``, or NotFound; ``form_key`` must be the study's
    AE form (safety.ae_form)."""
    study = get_study(session, study_key)
    spec = definition(study)
    ae_form = (spec.safety or {}).get("ae_form")
    if ae_form is None:
        raise NotFound(f"study {study.key!r} has no AE form (safety.ae_form in study.json)")
    if form_key != ae_form:
        raise NotFound(f"{form_key!r} is not the AE form of study {study.key!r} (that is {ae_form!r})")
    subject = get_subject(session, study, subject_key)
    record = get_record(session, subject, "", form_key, seq) if isinstance(seq, int) else None
    if record is None:
        raise NotFound(f"subject {subject.key!r} has no {form_key!r} entry {seq}")
    return AeRecord(study, spec, subject, record)


def _reporter(session, actor):
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    return {"name": user.name if user else actor.name, "username": actor.name, "role": actor.role or ""}


def _next_number(session, study):
    count = session.scalar(select(func.count(distinct(SaeReport.number)))
                           .where(SaeReport.study_id == study.id))
    n = count + 1
    while True:
        number = f"{study.key.upper()}-SAE-{n:03d}"
        if not session.scalar(select(SaeReport.id).where(SaeReport.study_id == study.id,
                                                         SaeReport.number == number)):
            return number
        n += 1


def reports_for_record(session, record):
    """The reports issued on one AE record, oldest version first."""
    return list(session.scalars(select(SaeReport).where(SaeReport.record_id == record.id)
                                .options(selectinload(SaeReport.receipt))
                                .order_by(SaeReport.version)))


def issue_sae_report(session, actor, study_key, subject_key, form_key, seq, now=None):
    """Issue the next SAE report on AE entry ``seq``: version 1 (initial) or a follow-up.

    Raises NotFound (no such study, subject or AE entry), Invalid (422: the AE is not serious or
    lacks what the report needs; the errors name every missing field) and Conflict (nothing changed
    since the previous version). Nothing is stored unless everything passes.
    """
    with write_transaction(session):
        ae = locate_ae(session, study_key, subject_key, form_key, seq)
        # One issuer at a time per study: numbers and versions are read and then written. SQLite's
        # BEGIN IMMEDIATE already serialises writers; this takes the study row lock on PostgreSQL.
        session.execute(select(Study.id).where(Study.id == ae.study.id).with_for_update())
        record, subject = ae.record, ae.subject
        sae.check_reportable(ae.form, record.data or {}, record.seq)
        history = reports_for_record(session, record)
        previous = history[-1] if history else None
        version = previous.version + 1 if previous else 1
        number = previous.number if previous else _next_number(session, ae.study)
        issued_at = now or utcnow()

        inputs = sae.gather(session, ae.study, ae.spec, subject, record, _reporter(session, actor))
        content = sae.build_content(inputs)
        changes = sae.changes_between(previous.content, content) if previous else None
        if previous is not None and not changes:
            raise Conflict(f"nothing changed on adverse event {record.seq} since {number} "
                           f"version {previous.version}; no follow-up was issued")
        timezone = subject.site.timezone or "UTC"
        initial_at = history[0].issued_at if history else issued_at
        report_clock = sae.clock(ae.spec, record.data or {}, initial_at)
        content["changes"] = changes
        content["report"] = {
            "number": number, "version": version,
            "type": "initial" if version == 1 else "follow-up",
            "type_label": "Initial" if version == 1 else f"Follow-up {version - 1}",
            "issued_at": sae.local_time(issued_at, timezone),
            "issued_at_utc": issued_at.isoformat(),
            "previous": ({"version": previous.version, "sha256": previous.sha256,
                          "issued_at": sae.local_time(previous.issued_at, timezone)}
                         if previous else None),
            "due": sae.local_time(report_clock.due_at, timezone),
            "hours": report_clock.hours,
            "overdue": report_clock.overdue(issued_at),
        }
        rendered = render_pdf(TEMPLATE, {"c": content})
        digest = hashlib.sha256(rendered.data).hexdigest()
        report = SaeReport(
            study_id=ae.study.id, site_id=subject.site_id, subject_id=subject.id, record_id=record.id,
            number=number, version=version, report_type=content["report"]["type"],
            record_version=record.version, awareness_at=report_clock.aware_at,
            due_at=report_clock.due_at, issued_at=issued_at, issued_by_id=actor.user_id,
            issued_by=actor.name, issued_role=actor.role, content=content, pdf=rendered.data,
            sha256=digest, pages=rendered.pages)
        session.add(report)
        session.flush()
        append(session.connection(), actor.event(
            Action.REPORT, study=ae.study.key, site=subject.site.key, subject=subject.key,
            form=record.form_key, form_version=record.form_version.label, record=record.id,
            field=issued.report_field(number, version), new=issued.issued_value(report, rendered.data)))
    return report


def get_report(session, study, number, version):
    report = session.scalar(select(SaeReport).where(
        SaeReport.study_id == study.id, SaeReport.number == number, SaeReport.version == version)
        .options(selectinload(SaeReport.receipt), selectinload(SaeReport.subject),
                 selectinload(SaeReport.site)))
    if report is None:
        raise NotFound(f"no SAE report {number} version {version} in study {study.key!r}")
    return report


def report_pdf(session, report):
    """The stored PDF bytes, checked against the stored sha256 (a mismatch is never served)."""
    data = session.scalar(select(SaeReport.pdf).where(SaeReport.id == report.id))
    if hashlib.sha256(data).hexdigest() != report.sha256:
        raise RuntimeError(f"stored PDF of {report.number} v{report.version} does not match its sha256")
    return data


def mark_received(session, actor, study_key, number, version):
    """Record the sponsor's receipt of one report version (once; audited)."""
    with write_transaction(session):
        study = get_study(session, study_key)
        report = get_report(session, study, number, version)
        if report.receipt is not None:
            raise Conflict(f"{number} version {version} was already marked received by "
                           f"{report.receipt.received_by}")
        receipt = SaeReceipt(report=report, received_at=utcnow(), received_by_id=actor.user_id,
                             received_by=actor.name)
        session.add(receipt)
        session.flush()
        append(session.connection(), actor.event(
            Action.REPORT, study=study.key, site=report.site.key, subject=report.subject.key,
            form=report.record.form_key, record=report.record_id,
            field=issued.receipt_field(number, version), new=issued.received_value(receipt)))
    return receipt


def list_reports(session, study, site_ids=None):
    """Every report of ``study`` (at ``site_ids``; None: all sites), newest first, without PDFs."""
    query = (select(SaeReport).where(SaeReport.study_id == study.id)
             .options(selectinload(SaeReport.receipt), selectinload(SaeReport.subject),
                      selectinload(SaeReport.site), selectinload(SaeReport.record))
             .order_by(SaeReport.issued_at.desc(), SaeReport.id.desc()))
    if site_ids is not None:
        query = query.where(SaeReport.site_id.in_(site_ids or [-1]))
    return list(session.scalars(query))


def is_overdue(report):
    """An initial report issued after its due time (awareness + the study's reporting hours)."""
    return report.version == 1 and report.due_at is not None and report.issued_at > report.due_at


@dataclasses.dataclass(frozen=True)
class PendingSae:
    """A serious AE with no report yet, and its running clock."""

    subject: Subject
    record: FormRecord
    clock: sae.Clock


def pending_saes(session, study, site_ids=None):
    """Serious AEs (aeser = Y) at ``site_ids`` that have no report yet, most urgent first."""
    spec = definition(study)
    ae_form = (spec.safety or {}).get("ae_form")
    if ae_form is None:
        return []
    reported = select(SaeReport.record_id).where(SaeReport.study_id == study.id)
    query = (select(FormRecord, Subject).join(Subject, Subject.id == FormRecord.subject_id)
             .where(Subject.study_id == study.id, FormRecord.visit_key == "",
                    FormRecord.form_key == ae_form, FormRecord.id.not_in(reported))
             .options(selectinload(Subject.site)).order_by(FormRecord.id))
    if site_ids is not None:
        query = query.where(Subject.site_id.in_(site_ids or [-1]))
    pending = [PendingSae(subject, record, sae.clock(spec, record.data or {}))
               for record, subject in session.execute(query) if (record.data or {}).get("aeser") == "Y"]
    far = utcnow().replace(year=9999)
    return sorted(pending, key=lambda p: p.clock.due_at or far)
