"""The canonical serialisation of an event and the hash chain over it.

The hash of event n is sha256 over the canonical JSON of all its stored columns (values are stored as
canonical JSON text already), including the hash of event n-1. Any change to a stored column, a
deleted row or a reordering breaks the chain at the first affected event.
"""
import hashlib
import json

GENESIS = "0" * 64

#: The stored columns covered by the hash, in their fixed order.
HASHED_COLUMNS = (
    "seq", "ts", "actor_id", "actor_name", "actor_role", "action", "study", "site", "subject",
    "visit", "form", "form_version", "record", "field", "old_value", "new_value", "reason",
    "ip", "user_agent", "channel", "prev_hash",
)


def dumps(value):
    """Canonical JSON text of a value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def value_text(value):
    """How an old or new value is stored: canonical JSON text, or NULL when absent."""
    return None if value is None else dumps(value)


def event_hash(row):
    """The hash of one stored event (a mapping with the HASHED_COLUMNS)."""
    payload = dumps([row[name] for name in HASHED_COLUMNS])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
