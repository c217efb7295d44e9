"""Reading form records as the API and pages show them."""
from sqlalchemy import select

from ecrf.models import FormRecord


def record_view(spec, record, form_key):
    """``{"data", "status", "version", "form_version"}`` of a record (a not-started one if None)."""
    if record is None:
        return {"data": {}, "status": "not_started", "version": 0,
                "form_version": spec.forms[form_key].version, "missing": {}}
    return {"data": record.data, "status": record.status, "version": record.version,
            "form_version": record.form_version.label, "missing": record.missing or {}}


def subject_records(session, subject, form_key):
    """A subject's records of one log form, in entry order."""
    return list(session.scalars(select(FormRecord).where(
        FormRecord.subject_id == subject.id, FormRecord.visit_key == "",
        FormRecord.form_key == form_key).order_by(FormRecord.seq)))
