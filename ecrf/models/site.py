"""Sites (hospitals, centres) of a study."""
import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecrf.db import Base, utcnow
from ecrf.models.study import Study


class Site(Base):
    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("study_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    #: The site id users see and subject ids start with ("01").
    key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(500))
    #: IANA zone used to show times to this site's users; storage is always UTC.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    active: Mapped[bool] = mapped_column(default=True)
    #: The last number given to a generated subject id here (the ``{n}`` of the study's template);
    #: taken with UPDATE ... RETURNING so that parallel enrolments never draw the same number.
    subject_counter: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    study: Mapped[Study] = relationship()
