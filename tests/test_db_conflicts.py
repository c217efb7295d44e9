"""``write_transaction`` turns every way of losing a race with another writer into a Conflict (409),
never a 500: a unique violation, a versioned row changed meanwhile (StaleDataError), and on
PostgreSQL a serialization failure. Real committed databases, two sessions."""
import pytest
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecrf.db import make_engine, make_session_factory, write_transaction
from ecrf.errors import Conflict


class _Base(DeclarativeBase):
    pass


class Thing(_Base):
    """A throwaway versioned table, like form_record (``version_id_col``)."""

    __tablename__ = "conflict_thing"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)
    version: Mapped[int] = mapped_column()
    __mapper_args__ = {"version_id_col": version}


@pytest.fixture
def sessions(new_database):
    engine = make_engine(new_database())
    _Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session, write_transaction(session):
        session.add(Thing(name="a"))
    yield factory
    engine.dispose()


def test_a_row_changed_meanwhile_is_a_conflict(sessions):
    with sessions() as mine, sessions() as theirs:
        stale = mine.scalar(select(Thing))
        mine.commit()
        with write_transaction(theirs):
            theirs.scalar(select(Thing)).name = "theirs"
        with pytest.raises(Conflict, match="at the same moment"), write_transaction(mine):
            stale.name = "mine"
    with sessions() as check:
        assert check.scalar(select(Thing.name)) == "theirs"


def test_a_unique_violation_is_a_conflict(sessions):
    with sessions() as session:
        with pytest.raises(Conflict), write_transaction(session):
            session.add(Thing(name="a"))
        assert session.scalar(select(func.count()).select_from(Thing)) == 1


def test_a_serialization_failure_is_a_conflict(sessions, backend):
    if backend != "postgresql":
        pytest.skip("SQLite's write lock serialises writers; no transaction fails afterwards")
    first, second = sessions(), sessions()
    # Each reads what the other writes, then writes: one of them must fail at commit (SSI).
    with pytest.raises(Conflict):
        with write_transaction(first):
            first.connection().exec_driver_sql("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            count = first.scalar(select(func.count()).select_from(Thing))
            with write_transaction(second):
                second.connection().exec_driver_sql("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                second.scalar(select(func.count()).select_from(Thing))
                second.add(Thing(name="second"))
            first.add(Thing(name=f"first{count}"))
    first.close()
    second.close()
    with sessions() as check:
        assert sorted(check.scalars(select(Thing.name))) == ["a", "second"]
