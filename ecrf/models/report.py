"""Issued SAE reports and their receipt by the sponsor. Both tables are append-only
(``ecrf.models.append_only``): database triggers refuse UPDATE, DELETE and REPLACE, so an issued report
can never be overwritten; a change to the adverse event is reported as a new version (a follow-up).
``ecrf audit verify`` proves each stored report and receipt against its event (``ecrf.reports.issued``)."""
import datetime as dt

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecrf.db import Base, utcnow
from ecrf.models.record import FormRecord
from ecrf.models.site import Site
from ecrf.models.subject import Subject


class SaeReport(Base):
    """One issued version of an SAE report: the PDF exactly as issued, its hash and its content."""

    __tablename__ = "sae_report"
    __table_args__ = (UniqueConstraint("study_id", "number", "version"),
                      UniqueConstraint("record_id", "version"))

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    #: The AE log record reported on.
    record_id: Mapped[int] = mapped_column(ForeignKey("form_record.id"))
    #: The case number, the same for every version of one AE ("MESRIX-II-SAE-001").
    number: Mapped[str] = mapped_column(String(80))
    #: 1 for the initial report, n for follow-up n-1.
    version: Mapped[int]
    #: "initial" or "follow-up".
    report_type: Mapped[str] = mapped_column(String(20))
    #: The AE record's version (optimistic-concurrency counter) the report was made from.
    record_version: Mapped[int]
    #: When the investigator became aware of the SAE (the AE's saeawdtc): starts the report clock.
    awareness_at: Mapped[dt.datetime | None]
    #: awareness_at + the study's report_within_hours (24 unless the protocol says otherwise).
    due_at: Mapped[dt.datetime | None]
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    #: The issuer's username (or cli:<account>) as written to the audit log.
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_role: Mapped[str | None] = mapped_column(String(32))
    #: The report's content as rendered (JSON); a follow-up is compared with its predecessor's.
    content: Mapped[dict]
    #: The PDF bytes exactly as issued; loaded only when asked for.
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    #: sha256 of ``pdf`` (hex), also written to the audit log.
    sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int]

    subject: Mapped[Subject] = relationship()
    site: Mapped[Site] = relationship()
    record: Mapped[FormRecord] = relationship()
    receipt: Mapped["SaeReceipt | None"] = relationship(back_populates="report", uselist=False)

    @property
    def type_label(self):
        """"Initial" or "Follow-up n"."""
        return "Initial" if self.version == 1 else f"Follow-up {self.version - 1}"


class SaeReceipt(Base):
    """The sponsor's acknowledgement that one report version was received (at most one each)."""

    __tablename__ = "sae_receipt"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("sae_report.id"), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    received_by: Mapped[str] = mapped_column(String(200))

    report: Mapped[SaeReport] = relationship(back_populates="receipt")
