"""The canonical serialisation of an event and the hash chain over it.

The hash of event n is sha256 over the canonical JSON of all its stored columns (values are stored as
canonical JSON text already), including the hash of event n-1. Any change to a stored column, a
deleted row or a reordering breaks the chain at the first affected event.

The definition is fixed for every event ever written: the UTF-8 bytes of
``json.dumps([<HASHED_COLUMNS in order>], sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)``. ``dumps`` below produces exactly those bytes with one
prebuilt encoder (``json.dumps`` with non-default options builds a new encoder on every call, which
was most of the cost of verifying).
"""
import hashlib
import json
from json import encoder as _json_encoder

GENESIS = "0" * 64

#: The stored columns covered by the hash, in their fixed order.
HASHED_COLUMNS = (
    "seq", "ts", "actor_id", "actor_name", "actor_role", "action", "study", "site", "subject",
    "visit", "form", "form_version", "record", "field", "old_value", "new_value", "reason",
    "ip", "user_agent", "channel", "prev_hash",
)

#: Every stored column, as verify and replay read them: the hashed ones in order, then the hash.
EVENT_COLUMNS = (*HASHED_COLUMNS, "hash")

# Same options as the json.dumps call that defines the hash; JSONEncoder.encode is what dumps calls.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode = _ENCODER.encode
_sha256 = hashlib.sha256


def _row_chunks():
    """``f(values, 0)`` -> chunks of the canonical JSON of a flat list of scalars.

    This is the C encoder ``json.dumps`` builds on every call with the options above, built once
    (without the cycle check, which changes no output and cannot matter for a row of scalars);
    ``JSONEncoder.iterencode`` where the C accelerator is missing.
    """
    make = _json_encoder.c_make_encoder
    if make is None or _json_encoder.encode_basestring is not _json_encoder.c_encode_basestring:
        return lambda values, _level: _ENCODER.iterencode(values)
    return make(None, _ENCODER.default, _json_encoder.encode_basestring, None, ":", ",", True, False, False)


#: For loops over the whole log (verify): ``"".join(row_chunks(values, 0))`` is ``dumps(values)``.
row_chunks = _row_chunks()


def dumps(value):
    """Canonical JSON text of a value: sorted keys, no spaces, UTF-8 kept."""
    return _encode(value)


def value_text(value):
    """How an old or new value is stored: canonical JSON text, or NULL when absent."""
    return None if value is None else _encode(value)


def hash_values(values):
    """The hash of one event given its HASHED_COLUMNS values in order (a list or tuple)."""
    # A tuple is written exactly as a list, so a database row slice can be passed as is.
    return _sha256("".join(row_chunks(values, 0)).encode("utf-8")).hexdigest()


def event_hash(row):
    """The hash of one stored event (a mapping with the HASHED_COLUMNS)."""
    return hash_values([row[name] for name in HASHED_COLUMNS])
