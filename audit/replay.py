"""Rebuilding clinical state from the events alone.

Replaying the log gives, for every form record, its document, missing-data flags and status, and for
every subject its state; the caller compares that with what the database holds (ecrf audit verify).
"""
import dataclasses
import json

from audit.event import Action


@dataclasses.dataclass
class RecordState:
    study: str
    subject: str
    form: str
    data: dict = dataclasses.field(default_factory=dict)
    missing: dict = dataclasses.field(default_factory=dict)
    status: str | None = None
    first_seq: int = 0
    last_seq: int = 0


@dataclasses.dataclass
class ReplayState:
    records: dict = dataclasses.field(default_factory=dict)   # record id -> RecordState
    subjects: dict = dataclasses.field(default_factory=dict)  # (study, subject) -> (state, seq)
    visits: dict = dataclasses.field(default_factory=dict)    # (study, subject, visit) -> date text

    def apply(self, row):
        """Apply one stored event (a mapping of audit_event columns)."""
        action = row["action"]
        if row["record"] is not None and action in _FIELD_ACTIONS:
            state = self.records.get(row["record"])
            if state is None:
                state = self.records[row["record"]] = RecordState(
                    row["study"], row["subject"], row["form"], first_seq=row["seq"])
            state.last_seq = row["seq"]
            if action == Action.STATUS:
                state.status = _load(row["new_value"])
            elif action == Action.MISSING:
                if row["new_value"] is None:
                    state.missing.pop(row["field"], None)
                else:
                    state.missing[row["field"]] = _load(row["new_value"])
            elif row["field"] is not None:
                set_pointer(state.data, row["field"], _load(row["new_value"]),
                            remove=row["new_value"] is None)
        elif action == Action.VISIT:
            self.visits[(row["study"], row["subject"], row["visit"])] = _load(row["new_value"])
        elif action in (Action.ENROL, Action.SUBJECT_STATE, Action.WITHDRAW):
            self.subjects[(row["study"], row["subject"])] = (_load(row["new_value"]), row["seq"])


_FIELD_ACTIONS = {Action.CREATE, Action.UPDATE, Action.CLEAR, Action.STATUS, Action.MISSING}


def _load(text):
    return None if text is None else json.loads(text)


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def set_pointer(document, pointer, value, remove=False):
    """Set (or remove) the value at a JSON pointer, creating objects and list slots on the way."""
    tokens = [_unescape(t) for t in pointer.split("/")[1:]]
    target = document
    for i, token in enumerate(tokens[:-1]):
        nxt_is_index = tokens[i + 1].isdigit()
        if isinstance(target, list):
            index = int(token)
            while len(target) <= index:
                target.append(None)
            if target[index] is None:
                target[index] = [] if nxt_is_index else {}
            target = target[index]
        else:
            if token not in target or target[token] is None:
                target[token] = [] if nxt_is_index else {}
            target = target[token]
    last = tokens[-1]
    if isinstance(target, list):
        index = int(last)
        if remove:
            if index < len(target):
                del target[index]
            return
        while len(target) <= index:
            target.append(None)
        target[index] = value
    elif remove:
        target.pop(last, None)
    else:
        target[last] = value


def replay(rows):
    """Replay an iterable of stored events into a fresh ReplayState."""
    state = ReplayState()
    for row in rows:
        state.apply(row)
    return state
