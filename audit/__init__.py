"""The audit log: append-only, hash-chained, replayable. Knows SQLAlchemy Core, nothing of Flask.

``append(connection, event)`` must be called inside the caller's transaction, so that the data change
and its audit events commit or roll back together. ``verify_chain`` proves the log intact and
``replay`` rebuilds the clinical state it describes, so a caller can prove the log explains the data.
"""
from audit.append import append, append_many, head
from audit.event import Action, Event, RequestContext
from audit.replay import ReplayState, get_pointer, replay, set_pointer
from audit.table import audit_event, metadata
from audit.verify import ChainProblem, VerifyResult, parse_checkpoint, verify_chain

__all__ = [
    "Action", "ChainProblem", "Event", "ReplayState", "RequestContext", "VerifyResult",
    "append", "append_many", "audit_event", "get_pointer", "head", "metadata", "parse_checkpoint",
    "replay", "set_pointer", "verify_chain",
]
