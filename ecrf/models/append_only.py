"""The one list of tables the database refuses to change (DESIGN.md, invariant 11).

Each entry names a table and its keys (the primary key first, then each unique key). The migrations
create the triggers of every table listed here on SQLite and PostgreSQL (``audit.ddl``), and
``ecrf audit verify`` reports any of them that is missing, disabled or replaced. A table added to
this list needs a migration that creates its triggers (``ddl.create_statements(dialect, [entry])``);
tests check that the head database has the triggers of every entry, and that the keys declared here
are the table's own.
"""
from audit.ddl import AppendOnly

APPEND_ONLY = (
    #: The audit log: history cannot be edited.
    AppendOnly("audit_event", keys=(("seq",),)),
    #: Issued SAE reports: a change is a follow-up, a new row.
    AppendOnly("sae_report", keys=(("id",), ("study_id", "number", "version"), ("record_id", "version"))),
    #: The sponsor's receipts: never withdrawn.
    AppendOnly("sae_receipt", keys=(("id",), ("report_id",))),
    #: E-signatures: signing again adds a row; a signature outlived by its data stays as signed.
    AppendOnly("signature", keys=(("id",),)),
    #: Randomization: the concealed list, its slots, each allocation (a slot is consumed by adding an
    #: allocation, never by changing the slot) and each emergency unblinding.
    AppendOnly("allocation_list", keys=(("id",), ("study_id",))),
    AppendOnly("allocation_slot", keys=(("id",), ("study_id", "randomization_number"),
                                        ("list_id", "stratum", "position"))),
    AppendOnly("allocation", keys=(("id",), ("study_id", "randomization_number"), ("subject_id",),
                                   ("slot_id",))),
    AppendOnly("unblinding", keys=(("id",),)),
)


def declared(*tables):
    """The entries of ``tables``, in that order (a migration names the tables it protects, so that a
    table added to the list later is left to its own migration); KeyError for one not listed."""
    entries = {entry.table: entry for entry in APPEND_ONLY}
    missing = [table for table in tables if table not in entries]
    if missing:
        raise KeyError(f"not declared append-only: {', '.join(missing)}")
    return [entries[table] for table in tables]
