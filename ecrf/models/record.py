"""Form records: one JSON document per subject, visit and form (or per log entry)."""
import datetime as dt
import enum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecrf.db import Base, utcnow
from ecrf.models.study import FormVersion
from ecrf.models.subject import Subject


class RecordStatus(enum.StrEnum):
    DRAFT = "draft"
    COMPLETE = "complete"
    VERIFIED = "verified"
    SIGNED = "signed"
    LOCKED = "locked"


class FormRecord(Base):
    __tablename__ = "form_record"
    __table_args__ = (UniqueConstraint("subject_id", "visit_key", "form_key", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    #: The visit id, or "" for log forms that belong to the subject (AE log, con meds).
    visit_key: Mapped[str] = mapped_column(String(64))
    form_key: Mapped[str] = mapped_column(String(64))
    #: 1 for visit forms; the entry number for log forms.
    seq: Mapped[int] = mapped_column(default=1)
    #: The form version the data was saved against; never reinterpreted silently.
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_version.id"))
    data: Mapped[dict] = mapped_column(default=dict)
    #: Missing-data flags kept apart from values: {"/field": {"flag": "not_done", "reason": "..."}}.
    missing: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20))
    #: Optimistic-concurrency version, bumped by every save.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subject: Mapped[Subject] = relationship()
    form_version: Mapped[FormVersion] = relationship()

    __mapper_args__ = {"version_id_col": version}
