"""A subject's visits as they happened: the visit date, and unscheduled visits added by site staff."""
import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecrf.db import Base, utcnow
from ecrf.models.subject import Subject


class SubjectVisit(Base):
    __tablename__ = "subject_visit"
    __table_args__ = (UniqueConstraint("subject_id", "visit_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    #: A visit id of the schedule, or "unscheduled_<n>" for an unscheduled visit.
    visit_key: Mapped[str] = mapped_column(String(64))
    #: Shown for unscheduled visits ("Unscheduled 1: fever"); scheduled visits use the study's label.
    label: Mapped[str | None] = mapped_column(String(200))
    #: The date the visit took place (local calendar date at the site), once entered.
    visit_date: Mapped[dt.date | None]
    unscheduled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subject: Mapped[Subject] = relationship()
