"""Review of captured data: queries, source data verification, e-signatures and locks.

These rows change only through ``ecrf.review`` services, each change audited with it. Nothing here is
deleted: a query is closed, a verification cleared, a lock lifted, a signature outlived by its data.
What the pages show as "verified", "signed" or "locked" is derived from these rows and the current
data (``ecrf.review.status``), never stored as a flag that could go stale.
"""
import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecrf.db import Base, JSONDocument, utcnow
from ecrf.models.record import FormRecord
from ecrf.models.subject import Subject


class QueryState(enum.StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class DataQuery(Base):
    """A question about one field of one form record, with its thread of messages."""

    __tablename__ = "data_query"
    __table_args__ = (Index("ix_data_query_study_state", "study_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("form_record.id"), index=True)
    #: JSON pointer of the field asked about ("/sbp").
    field: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20))
    #: "manual" (raised by a monitor or data manager) or "auto" (a failed soft edit check).
    origin: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subject: Mapped[Subject] = relationship()
    record: Mapped[FormRecord] = relationship()
    messages: Mapped[list["QueryMessage"]] = relationship(
        back_populates="query", order_by="QueryMessage.id")


class QueryMessage(Base):
    """One step of a query's thread: raise, answer, close or reopen, with its author and time."""

    __tablename__ = "query_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("data_query.id"), index=True)
    #: None for the edit check that raised an automatic query.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    author_name: Mapped[str] = mapped_column(String(200))
    #: raise, answer, close or reopen.
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    #: For an answer: whether the site changed the data to resolve it.
    data_changed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    query: Mapped[DataQuery] = relationship(back_populates="messages")


class Verification(Base):
    """A monitor's source data verification of one top-level field of a record.

    Active while ``cleared_at`` is empty *and* the field still hashes to ``value_hash``; capture
    clears it (audited) when the value changes, so the page can say "changed since verification".
    """

    __tablename__ = "verification"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("form_record.id"), index=True)
    #: JSON pointer of a top-level field ("/sbp").
    field: Mapped[str] = mapped_column(String(500))
    #: sha256 of the canonical JSON of the value verified.
    value_hash: Mapped[str] = mapped_column(String(64))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    verified_by_name: Mapped[str] = mapped_column(String(200))
    verified_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[dt.datetime | None]


class Signature(Base):
    """An electronic signature (21 CFR 11.50, 11.200) over a form, a visit or a casebook.

    Valid while the records it names still hash to ``data_hash`` (``ecrf.review.signatures``);
    there is no validity flag to go stale. Never changed or deleted (the table is append-only,
    ``ecrf.models.append_only``); signing again adds a row.
    """

    __tablename__ = "signature"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"), index=True)
    #: form, visit or casebook.
    scope: Mapped[str] = mapped_column(String(10))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("form_record.id"))
    visit_key: Mapped[str | None] = mapped_column(String(64))
    signer_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    #: The signer's full name as printed with the signature (11.50(a)(1)).
    printed_name: Mapped[str] = mapped_column(String(200))
    #: What the signature means (11.50(a)(3)), e.g. "I approve the data in this casebook ...".
    meaning: Mapped[str] = mapped_column(String(500))
    signed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Ids of the records signed, in id order.
    record_ids: Mapped[list] = mapped_column(JSONDocument)
    #: sha256 over those records' content at signing (ecrf.review.signatures.content_hash).
    data_hash: Mapped[str] = mapped_column(String(64))

    subject: Mapped[Subject] = relationship()


class LockScope(enum.StrEnum):
    FORM = "form"
    SUBJECT = "subject"
    STUDY = "study"


class Lock(Base):
    """A lock on a form record, a subject or a whole study; lifted (with a reason), never deleted."""

    __tablename__ = "data_lock"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    scope: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subject.id"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("form_record.id"))
    locked_by: Mapped[str] = mapped_column(String(200))
    locked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(2000))
    unlocked_by: Mapped[str | None] = mapped_column(String(200))
    unlocked_at: Mapped[dt.datetime | None]
    unlock_reason: Mapped[str | None] = mapped_column(String(2000))


class FormStash(Base):
    """Values a user had typed into a form when their session timed out, kept server-side (not in
    the cookie: they may be patient data) until the same user signs in again and returns to the page.
    Not clinical data: the row is removed once the values are shown again."""

    __tablename__ = "form_stash"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    #: The page to show the values on again.
    path: Mapped[str] = mapped_column(String(2000))
    #: [[name, value], ...] as posted, the CSRF token left out.
    fields: Mapped[list] = mapped_column(JSONDocument)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
