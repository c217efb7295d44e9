"""The hash definition, JSON pointers, and replay of the capture service's diffs (no database)."""
import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from audit import ReplayState, get_pointer, set_pointer
from audit.canonical import (EVENT_COLUMNS, GENESIS, HASHED_COLUMNS, dumps, event_hash, hash_values,
                             row_chunks, value_text)
from ecrf.audit_check import first_difference
from ecrf.capture.service import diff_documents

ROW = {
    "seq": 7, "ts": "2026-11-23T08:40:00.123456Z", "actor_id": 3, "actor_name": "nurse",
    "actor_role": "site_staff", "action": "update", "study": "demo", "site": "01", "subject": "01-001",
    "visit": "baseline", "form": "vitals", "form_version": "vitals@0123456789ab", "record": 12,
    "field": "/sbp", "old_value": "120", "new_value": "125", "reason": "Transkriptionsfehler: «ø» \u2028",
    "ip": "127.0.0.1", "user_agent": "Mozilla/5.0 \"quoted\"", "channel": "page", "prev_hash": GENESIS,
}


def test_hash_definition_is_unchanged():
    """Events already stored must keep verifying: sha256 over json.dumps of the columns in order."""
    defined = json.dumps([ROW[c] for c in HASHED_COLUMNS], sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False, allow_nan=False)
    expected = hashlib.sha256(defined.encode("utf-8")).hexdigest()
    assert event_hash(ROW) == expected
    assert hash_values(tuple(ROW[c] for c in HASHED_COLUMNS)) == expected
    assert expected == "99e1cb738c0f4cb7f1b54b6724c805140ca2b33458c91ff831bcf352cea66669"


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(), st.booleans(),
                          st.floats(allow_nan=False, allow_infinity=False)), min_size=21, max_size=21))
def test_fast_serialisation_is_byte_identical(values):
    defined = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert dumps(values) == dumps(tuple(values)) == "".join(row_chunks(tuple(values), 0)) == defined
    assert hash_values(tuple(values)) == hashlib.sha256(defined.encode("utf-8")).hexdigest()


def test_pointers():
    doc = {}
    set_pointer(doc, "/a~1b/c~0d", 1)
    assert doc == {"a/b": {"c~d": 1}}
    assert get_pointer(doc, "/a~1b/c~0d") == 1
    assert get_pointer(doc, "/missing/x", "absent") == "absent"
    doc = {"rows": [{"x": 1}, {}]}
    set_pointer(doc, "/rows/0", None, remove=True)  # a row's place is kept for the events that refill it
    set_pointer(doc, "/rows/0/y", 2)
    assert doc == {"rows": [{"y": 2}, {}]}
    set_pointer(doc, "/rows/1/10", "ten")  # a key that looks like a number is still an object key
    assert doc["rows"][1] == {"10": "ten"}
    set_pointer(doc, "", {"whole": True})
    assert doc == {"whole": True}


# Values as forms store them; integers start at 2 so that none equals true or false.
_scalar = st.one_of(st.integers(2, 1000), st.text(max_size=5), st.booleans(),
                    st.floats(-100, 100, allow_nan=False).filter(lambda f: f != int(f)))
_names = st.sampled_from(["a", "b", "c", "d~", "e/f"])
_row = st.dictionaries(_names, st.one_of(_scalar, st.dictionaries(_names, _scalar, max_size=2)), max_size=3)
_value = st.one_of(_scalar, st.lists(_scalar, max_size=3), st.lists(_row, min_size=1, max_size=4),
                   st.dictionaries(_names, st.one_of(_scalar, _row), max_size=3))
_document = st.dictionaries(_names, _value, max_size=5)


def _events(old, new, record=1):
    """Rows (tuples in EVENT_COLUMNS order) as save_form would log the change from old to new."""
    for ptr, before, after in diff_documents(old, new):
        event = dict(ROW, record=record, field=ptr, old_value=value_text(before), new_value=value_text(after),
                     hash="")
        yield tuple(event[name] for name in EVENT_COLUMNS)


@settings(max_examples=300, deadline=None)
@given(st.lists(_document, min_size=1, max_size=5))
def test_replaying_the_services_diffs_rebuilds_every_document(documents):
    state = ReplayState()
    previous = {}
    for document in documents:
        for event in _events(previous, document):
            state.apply(event)
        replayed = state.records[1].data if 1 in state.records else {}
        assert first_difference(replayed, document) is None, (previous, document, replayed)
        previous = document
