"""Append-only tables, on a database that really commits: every table of the one list
(``ecrf.models.append_only``) refuses every kind of write on SQLite and PostgreSQL, an issued SAE
report cannot be forged through the database, and ``ecrf audit verify`` proves issued reports,
receipts and signatures against the log and names every append-only trigger that is not in place.

Here ``db`` is a session on a fresh migrated database of its own (``new_database``) whose commits are
real, so the fixtures of this folder (study, users, subject) write to it, and raw SQL runs on other
connections as a forger's would.
"""
import hashlib
import json
import types

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from audit import ddl
from audit.event import RequestContext
from ecrf import create_app
from ecrf.actor import Actor
from ecrf.audit_check import verify_database
from ecrf.db import Database, make_engine, make_session_factory
from ecrf.migrate import target_metadata
from ecrf.models import SaeReceipt
from ecrf.models.append_only import APPEND_ONLY, declared
from ecrf.reports import service
from ecrf.review import signatures

#: For each append-only table, a column a forger would change and the forged value.
FORGED = {
    "audit_event": ("reason", "forged"),
    "sae_report": ("sha256", "f" * 64),
    "sae_receipt": ("received_by", "forger"),
    "signature": ("printed_name", "Forger"),
    "allocation_list": ("seed", "0" * 64),
    "allocation_slot": ("arm", "forged"),
    "allocation": ("arm", "forged"),
    "unblinding": ("reason", "forged"),
}

#: A randomized study of its own, so that every randomization table holds a row to attack.
RANDOMIZED_STUDY = {
    "id": "aotest", "title": "Append-only randomized study",
    "arms": [{"id": "a", "label": "Active"}, {"id": "b", "label": "Placebo"}],
    "randomization": {"method": "permuted_blocks", "ratio": {"a": 1, "b": 1}, "visit": "baseline",
                      "stratify_by": ["site"], "block_sizes": [2]},
    "blinding": {"masking": "double", "unblinded_roles": ["pharmacist"]},
    "visits": [{"id": "baseline", "label": "Baseline", "day": 0, "forms": ["vitals"]}],
    "sites": [{"id": "01", "name": "Site one", "timezone": "UTC"}]}
VITALS = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Vital signs",
          "type": "object", "properties": {"sbp": {"type": "integer", "title": "Systolic pressure"}}}


def _randomize_and_unblind(db, tmp_path, load_study, actor, doc):
    """Load the randomized study, generate its list, randomize a subject and unblind it."""
    from ecrf.capture.service import enrol_subject
    from ecrf.randomization import service as randomization

    folder = tmp_path / "aotest"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps(RANDOMIZED_STUDY), encoding="utf-8")
    (folder / "vitals.json").write_text(json.dumps(VITALS), encoding="utf-8")
    load_study(folder)
    randomization.generate_list(db, actor, "aotest", size=4)
    subject = enrol_subject(db, actor, "aotest", "01")
    randomization.randomize(db, actor, "aotest", subject.key)
    randomization.unblind(db, actor, doc, "aotest", subject.key, "anaphylaxis: treating physician")


@pytest.fixture
def committed(new_database):
    engine = make_engine(new_database())
    yield engine
    engine.dispose()


@pytest.fixture
def db(committed):
    session = make_session_factory(committed)()
    yield session
    session.close()


@pytest.fixture
def issued(db, sae_study, site_subject, make_user, quick_pdf, kit, tmp_path, load_study, actor):
    """A row in every append-only table: an issued SAE report, its receipt, a signature, an
    allocation list with its slots, an allocation, an unblinding, and their events."""
    sae_study()
    doc = make_user("doc", "investigator", "saetest")
    spon = make_user("spon", "sponsor", "saetest")
    record = site_subject()
    as_doc = Actor.for_user(doc, RequestContext(channel="page"), "investigator")
    report = service.issue_sae_report(db, as_doc, "saetest", "01-001", "ae", record.seq)
    service.mark_received(db, Actor.for_user(spon, RequestContext(channel="api"), "sponsor"), "saetest",
                          report.number, 1)
    signatures.sign(db, as_doc, "saetest", "01-001", "form", kit.PASSWORD, record_id=record.id)
    _randomize_and_unblind(db, tmp_path, load_study, actor, doc)
    db.commit()
    return types.SimpleNamespace(number=report.number, sha256=report.sha256, record=record)


def _rows(engine):
    """Every row of every append-only table, as stored."""
    metadata = target_metadata()
    with engine.connect() as conn:
        return {entry.table: sorted(map(tuple, conn.execute(metadata.tables[entry.table].select())))
                for entry in APPEND_ONLY}


def _columns(table):
    return [column.name for column in target_metadata().tables[table].columns]


def _writes(dialect, entry):
    """(kind, SQL) of every kind of write that would change a stored row of ``entry``'s table."""
    t, (pk,) = entry.table, entry.keys[0]
    column, _ = FORGED[t]
    names = _columns(t)
    first = f"WHERE {pk} = (SELECT MIN({pk}) FROM {t})"
    forged = ", ".join(":forged" if name == column else name for name in names)
    row = f"({', '.join(names)}) SELECT {forged} FROM {t} {first}"
    writes = [("UPDATE", f"UPDATE {t} SET {column} = :forged"),
              ("UPDATE of the key", f"UPDATE {t} SET {pk} = {pk} + 1000"),
              ("DELETE", f"DELETE FROM {t}"),
              ("DELETE of one row", f"DELETE FROM {t} {first}"),
              ("ON CONFLICT DO UPDATE", f"INSERT INTO {t} {row} ON CONFLICT ({pk}) DO UPDATE SET "
                                        f"{column} = excluded.{column}")]
    if dialect == "postgresql":
        writes.append(("TRUNCATE", f"TRUNCATE {t} CASCADE"))
    else:
        writes += [("INSERT OR REPLACE", f"INSERT OR REPLACE INTO {t} {row}"),
                   ("REPLACE INTO", f"REPLACE INTO {t} {row}"),
                   ("UPDATE OR REPLACE", f"UPDATE OR REPLACE {t} SET {column} = :forged")]
        # A new primary key but a stored unique key: REPLACE would delete the row holding that key.
        for key in entry.keys[1:]:
            new_id = ", ".join(f"(SELECT MAX({pk}) + 1000 FROM {t})" if name == pk
                               else ":forged" if name == column else name for name in names)
            writes.append((f"INSERT OR REPLACE over unique key {key}",
                           f"INSERT OR REPLACE INTO {t} ({', '.join(names)}) SELECT {new_id} FROM {t} {first}"))
    return writes


def test_every_append_only_table_refuses_every_kind_of_write(committed, issued):
    dialect = committed.dialect.name
    before = _rows(committed)
    assert all(before[entry.table] for entry in APPEND_ONLY), "every table holds a row to attack"
    accepted = []
    for entry in APPEND_ONLY:
        for kind, sql in _writes(dialect, entry):
            try:
                with committed.begin() as conn:
                    conn.execute(text(sql), {"forged": FORGED[entry.table][1]})
            except DBAPIError as exc:
                assert "append-only" in str(exc.orig), (entry.table, kind, exc)
            else:
                accepted.append(f"{entry.table}: {kind}")
            assert _rows(committed) == before, (entry.table, kind)
    assert accepted == []
    # Insert-if-absent over a stored row: nothing happens on PostgreSQL; SQLite's trigger cannot tell
    # it from a REPLACE, so it is refused there. Either way nothing changes.
    for entry in APPEND_ONLY:
        names = ", ".join(_columns(entry.table))
        sql = f"INSERT INTO {entry.table} ({names}) SELECT {names} FROM {entry.table} WHERE true ON CONFLICT DO NOTHING"
        try:
            with committed.begin() as conn:
                assert conn.execute(text(sql)).rowcount == 0
        except DBAPIError as exc:
            assert dialect == "sqlite" and "append-only: REPLACE refused" in str(exc.orig)
        assert _rows(committed) == before


def test_a_forged_sae_pdf_is_refused_and_the_api_serves_the_original(committed, issued, bearer):
    path = f"/api/v1/studies/saetest/sae-reports/{issued.number}/1/pdf"
    app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "test-secret", "DATABASE_BIND": committed,
                      "INSTANCE_PATH": "/nonexistent-instance"})
    client, headers = app.test_client(), bearer("spon")
    original = client.get(path, headers=headers)
    assert original.status_code == 200 and hashlib.sha256(original.data).hexdigest() == issued.sha256
    forged = b"%PDF-1.7\n% forged report\n%%EOF\n"
    names = _columns("sae_report")
    values = ", ".join({"pdf": ":pdf", "sha256": ":sha"}.get(name, name) for name in names)
    row = f"({', '.join(names)}) SELECT {values} FROM sae_report WHERE number = :number"
    if committed.dialect.name == "sqlite":
        statement = f"INSERT OR REPLACE INTO sae_report {row}"
    else:
        statement = f"INSERT INTO sae_report {row} ON CONFLICT (id) DO UPDATE SET pdf = excluded.pdf, sha256 = excluded.sha256"
    with pytest.raises(DBAPIError, match="append-only"):
        with committed.begin() as conn:
            conn.execute(text(statement), {"pdf": forged, "sha": hashlib.sha256(forged).hexdigest(),
                                           "number": issued.number})
    served = client.get(path, headers=headers)
    assert served.status_code == 200 and served.data == original.data
    with committed.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(SaeReceipt.__table__)) == 1
    assert _verify(committed) == (0, [])


def test_the_declared_keys_are_the_tables_own():
    """The list names each table's primary key first, then exactly its unique keys."""
    metadata = target_metadata()
    for entry in APPEND_ONLY:
        table = metadata.tables[entry.table]
        unique = {tuple(c.name for c in constraint.columns) for constraint in table.constraints
                  if constraint.__class__.__name__ == "UniqueConstraint"}
        unique |= {tuple(c.name for c in index.columns) for index in table.indexes if index.unique}
        unique |= {(c.name,) for c in table.columns if c.unique}
        assert entry.keys[0] == tuple(c.name for c in table.primary_key.columns), entry.table
        assert set(entry.keys[1:]) == unique, entry.table
    assert set(FORGED) == {entry.table for entry in APPEND_ONLY}, "add the new table to FORGED"


def test_the_head_database_has_every_declared_trigger(committed):
    with committed.connect() as conn:
        assert ddl.trigger_problems(conn, APPEND_ONLY) == []


# --- ecrf audit verify proves issued documents and the triggers --------------------------------------

def _verify(engine):
    """``ecrf audit verify`` on ``engine``'s database: (exit code, the FAILED lines)."""
    from ecrf.cli import Context, main

    ctx = Context()
    ctx._db = Database(engine)
    result = CliRunner().invoke(main, ["audit", "verify", "--jobs", "1"], obj=ctx, catch_exceptions=False)
    return result.exit_code, [line for line in result.output.splitlines() if "FAILED" in line]


def _forge(engine, *statements, drop=APPEND_ONLY, **params):
    """Drop the triggers of ``drop``, run ``statements``, and commit."""
    with engine.begin() as conn:
        for statement in ddl.drop_statements(engine.dialect.name, drop, function=False):
            conn.execute(text(statement))
        for statement in statements:
            conn.execute(text(statement), params)


def _missing_lines(engine, tables=APPEND_ONLY):
    return [f"audit verify FAILED: append-only trigger {name} on {entry.table} is missing: the database "
            f"no longer refuses to change {entry.table}"
            for entry in tables for name in entry.trigger_sql(engine.dialect.name)]


def test_verify_proves_issued_documents(committed, issued):
    code, failed = _verify(committed)
    assert (code, failed) == (0, [])
    with make_session_factory(committed)() as session:
        report = verify_database(session)
    assert (report.reports, report.receipts, report.signatures) == (1, 1, 1)
    assert report.triggers == sum(len(e.trigger_sql(committed.dialect.name)) for e in APPEND_ONLY)


def test_a_changed_pdf_is_named_with_every_missing_trigger(committed, issued):
    forged = b"%PDF-1.7\n% forged\n%%EOF\n"
    _forge(committed, "UPDATE sae_report SET pdf = :pdf, sha256 = :sha", pdf=forged,
           sha=hashlib.sha256(forged).hexdigest())
    code, failed = _verify(committed)
    assert code == 1
    assert failed[0].startswith(f"audit verify FAILED: SAE report {issued.number} version 1 (saetest 01-001): "
                                f"stored sha256 differs from its issue event ")
    assert failed[1:] == _missing_lines(committed)


def test_a_pdf_changed_without_its_hash_is_named(committed, issued):
    _forge(committed, "UPDATE sae_report SET pdf = :pdf", pdf=b"%PDF-1.7\n%%EOF\n")
    assert f"SAE report {issued.number} version 1 (saetest 01-001): the stored PDF does not match its " \
           "stored sha256" in _verify(committed)[1][0]


def test_a_changed_due_time_is_named(committed, issued):
    """What the inbox's overdue flag is computed from is proven too."""
    _forge(committed, "UPDATE sae_report SET due_at = NULL")
    assert "stored due_at differs from its issue event" in _verify(committed)[1][0]


def test_a_deleted_receipt_is_named(committed, issued):
    _forge(committed, "DELETE FROM sae_receipt")
    code, failed = _verify(committed)
    assert code == 1 and failed[0].startswith(
        f"audit verify FAILED: the receipt of SAE report {issued.number} version 1 (study saetest) is in the "
        "log (event ")
    assert failed[0].endswith(") but not stored")


def test_a_changed_receipt_is_named(committed, issued):
    _forge(committed, "UPDATE sae_receipt SET received_by = 'someone else'")
    assert "the receipt of SAE report" in _verify(committed)[1][0] and "stored name 'someone else'" in \
        _verify(committed)[1][0]


def test_an_extra_report_row_is_named(committed, issued):
    """A report inserted behind the log's back (no trigger needs dropping for a new key)."""
    names = _columns("sae_report")
    values = ", ".join({"id": "id + 1", "version": "2"}.get(name, name) for name in names)
    with committed.begin() as conn:
        conn.execute(text(f"INSERT INTO sae_report ({', '.join(names)}) SELECT {values} FROM sae_report"))
    code, failed = _verify(committed)
    assert (code, failed) == (1, [f"audit verify FAILED: SAE report {issued.number} version 2 (saetest 01-001) "
                                  "has no issue event in the log"])


def test_a_deleted_report_and_signature_are_each_named(committed, issued):
    _forge(committed, "DELETE FROM sae_receipt", "DELETE FROM sae_report", "DELETE FROM signature")
    code, failed = _verify(committed)
    assert code == 1
    assert [line.split(" is in the log")[0] for line in failed if "is in the log" in line] == [
        "audit verify FAILED: signature 1",
        f"audit verify FAILED: SAE report {issued.number} version 1 (study saetest)"]


def test_one_dropped_trigger_is_named(committed, issued):
    entry = declared("sae_report")
    name = next(iter(entry[0].trigger_sql(committed.dialect.name)))
    with committed.begin() as conn:
        conn.execute(text(ddl.drop_statements(committed.dialect.name, entry, function=False)[0]))
    code, failed = _verify(committed)
    assert (code, failed) == (1, [f"audit verify FAILED: append-only trigger {name} on sae_report is missing: "
                                  "the database no longer refuses to change sae_report"])


def test_a_replaced_or_disabled_trigger_is_named(committed, issued):
    dialect = committed.dialect.name
    (entry,) = declared("signature")
    name = next(iter(entry.trigger_sql(dialect)))
    with committed.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text(f"ALTER TABLE signature DISABLE TRIGGER {name}"))
        else:
            conn.execute(text(f"DROP TRIGGER {name}"))
            conn.execute(text(f"CREATE TRIGGER {name} BEFORE UPDATE ON signature BEGIN SELECT 1; END"))
    code, failed = _verify(committed)
    what = "is disabled" if dialect == "postgresql" else "is not the declared one (it was replaced)"
    assert (code, failed) == (1, [f"audit verify FAILED: append-only trigger {name} on signature {what}"])


def test_an_arm_changed_in_the_database_is_named_without_naming_it(committed, issued):
    with committed.begin() as conn:
        arm = conn.execute(text("SELECT arm FROM subject WHERE arm IS NOT NULL")).scalar_one()
        conn.execute(text("UPDATE subject SET arm = :other WHERE arm = :arm"),
                     {"other": "b" if arm == "a" else "a", "arm": arm})
    code, failed = _verify(committed)
    assert code == 1 and len(failed) == 1
    assert "the stored arm differs from the log's (randomized at event" in failed[0]
    assert "'a'" not in failed[0] and "'b'" not in failed[0]
    assert "Active" not in failed[0] and "Placebo" not in failed[0]
    with committed.begin() as conn:  # an arm given to a subject the log never randomized
        conn.execute(text("UPDATE subject SET arm = :arm WHERE arm IS NOT NULL"), {"arm": arm})
        conn.execute(text("UPDATE subject SET arm = 'a' WHERE arm IS NULL AND id = (SELECT MIN(id) "
                          "FROM subject WHERE arm IS NULL)"))
    code, failed = _verify(committed)
    assert code == 1 and "(never randomized in the log)" in failed[0]
