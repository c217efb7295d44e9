"""Idempotency keys of API requests that created something: a retry with the same key replays the
stored answer instead of creating the thing twice (``ecrf.idempotency``)."""
import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecrf.db import Base, utcnow


class IdempotencyKey(Base):
    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Keys are per user: two users may send the same key without meeting.
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    #: The client's ``Idempotency-Key`` header.
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the method, path and body of the first request sent with this key.
    request_hash: Mapped[str] = mapped_column(String(64))
    #: The answer given to that request, replayed to every retry.
    status: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
