"""Lookups the review services share: a record by id within a study, and where an event happened."""
from sqlalchemy import select

from ecrf.errors import NotFound
from ecrf.models import FormRecord, Subject


def get_record(session, study, record_id):
    """The form record ``record_id`` of ``study``; NotFound for an id of another study (or none)."""
    record = session.scalar(select(FormRecord).join(Subject, Subject.id == FormRecord.subject_id)
                            .where(FormRecord.id == record_id, Subject.study_id == study.id)) \
        if isinstance(record_id, int) else None
    if record is None:
        raise NotFound(f"no form record {record_id!r} in study {study.key!r}")
    return record


def record_where(record):
    """The audit event location of a record: study, site, subject, visit, form, version, record."""
    subject = record.subject
    return {"study": subject.study.key, "site": subject.site.key, "subject": subject.key,
            "visit": record.visit_key or None, "form": record.form_key,
            "form_version": record.form_version.label, "record": record.id}


def subject_where(subject):
    return {"study": subject.study.key, "site": subject.site.key, "subject": subject.key}


def top_field(pointer):
    """The top-level field a JSON pointer is in: ``/tubes/1/tube`` -> ``/tubes``."""
    return "/" + pointer.split("/")[1] if pointer and pointer.startswith("/") else pointer


def form_fields(record):
    """The top-level field names of the form version a record was saved against."""
    return list(record.form_version.schema.get("properties", {}))
