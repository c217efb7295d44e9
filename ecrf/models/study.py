"""Studies and their immutable, content-hashed versions."""
import datetime as dt

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecrf.db import Base, utcnow


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The study id of study.json (also its folder name).
    key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    versions: Mapped[list["StudyVersion"]] = relationship(
        back_populates="study", order_by="StudyVersion.number")

    @property
    def current(self):
        return self.versions[-1] if self.versions else None


class FormVersion(Base):
    """One form schema, stored once however many study versions use it."""

    __tablename__ = "form_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    form_key: Mapped[str] = mapped_column(String(64))
    #: sha256 of the canonical JSON of the schema.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    schema: Mapped[dict]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def label(self):
        return f"{self.form_key}@{self.content_hash[:12]}"


class StudyVersion(Base):
    """An immutable snapshot of a study folder; a new one only when the content changes."""

    __tablename__ = "study_version"
    __table_args__ = (UniqueConstraint("study_id", "number"), UniqueConstraint("study_id", "content_hash"))

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    #: 1, 2, 3 … in load order.
    number: Mapped[int]
    #: sha256 over study.json and every form schema, canonical JSON.
    content_hash: Mapped[str] = mapped_column(String(64))
    #: {"study": study.json, "forms": {form id: schema}} exactly as validated. Deferred: it is read
    #: once per content hash (``ecrf.studies.definition_of`` keeps the parsed result), not per request.
    #: Plain JSON on PostgreSQL too, not JSONB: JSONB reorders keys, and the order of a form's
    #: ``properties`` is the order of its page, its exports and its printed CRF.
    definition: Mapped[dict] = mapped_column(JSON, deferred=True)
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    loaded_by: Mapped[str | None] = mapped_column(String(200))

    study: Mapped[Study] = relationship(back_populates="versions")
    forms: Mapped[list["StudyVersionForm"]] = relationship(back_populates="study_version")


class StudyVersionForm(Base):
    __tablename__ = "study_version_form"

    study_version_id: Mapped[int] = mapped_column(ForeignKey("study_version.id"), primary_key=True)
    form_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_version.id"))

    study_version: Mapped[StudyVersion] = relationship(back_populates="forms")
    form_version: Mapped[FormVersion] = relationship()
