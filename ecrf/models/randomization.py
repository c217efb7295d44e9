"""Randomization: the concealed allocation list, allocations and emergency unblindings.

Every table here only ever grows (DESIGN.md invariant 11): a list and its slots are written once, a
slot is consumed by INSERTing an allocation (never by updating the slot), and an unblinding is a new
row. Unique constraints, not locks held by the application, decide a race: two randomizations
trying the same slot both INSERT and one of them fails and takes the next slot.
"""
import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecrf.db import Base, utcnow
from ecrf.models.subject import Subject


class AllocationList(Base):
    """One study's allocation list (its method, seed and parameters); at most one per study."""

    __tablename__ = "allocation_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), unique=True)
    method: Mapped[str] = mapped_column(String(20))
    #: 64 hex digits from ``secrets``; None for a list imported from elsewhere.
    seed: Mapped[str | None] = mapped_column(String(64))
    #: Everything besides the seed that the list was derived from (ratio, blocks, strata, size).
    parameters: Mapped[dict]
    #: "generated" or "imported".
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class AllocationSlot(Base):
    """One concealed slot: the ``position``-th allocation of a stratum."""

    __tablename__ = "allocation_slot"
    __table_args__ = (UniqueConstraint("study_id", "randomization_number"),
                      UniqueConstraint("list_id", "stratum", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("allocation_list.id"))
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    #: "site=01; dm.sex=F" (factors in stratify_by order), "" for an unstratified list.
    stratum: Mapped[str] = mapped_column(String(500))
    position: Mapped[int]
    randomization_number: Mapped[int]
    arm: Mapped[str] = mapped_column(String(64))
    kit: Mapped[str | None] = mapped_column(String(64))
    #: The block the slot belongs to within its stratum (permuted blocks), else None.
    block: Mapped[int | None]


class Allocation(Base):
    """A subject's allocation: the consumed slot (None under minimization), written once."""

    __tablename__ = "allocation"
    __table_args__ = (UniqueConstraint("study_id", "randomization_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"), unique=True)
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("allocation_slot.id"), unique=True)
    stratum: Mapped[str] = mapped_column(String(500))
    #: The subject's value of each factor: {"site": "01", "dm.sex": "F"}.
    factors: Mapped[dict]
    randomization_number: Mapped[int]
    arm: Mapped[str] = mapped_column(String(64))
    kit: Mapped[str | None] = mapped_column(String(64))
    randomized_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    randomized_by: Mapped[str] = mapped_column(String(200))

    subject: Mapped[Subject] = relationship()


class Unblinding(Base):
    """An emergency unblinding: ``user`` may see this one subject's arm from now on."""

    __tablename__ = "unblinding"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    reason: Mapped[str] = mapped_column(String(2000))
    unblinded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
