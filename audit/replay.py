"""Rebuilding clinical state from the events alone.

Replaying the log gives, for every form record, its document, missing-data flags, status and where
it belongs (study, site, subject, visit, form, form version), and for every subject its state and
site; the caller compares that with what the database holds (ecrf audit verify), or rebuilds one
record as it was at a past moment (the audit pages).

The events a writer emits, and what replay does with them:

* ``create``/``update``/``clear`` with a ``record`` and a ``field`` pointer: set the value at the
  pointer (``new`` absent: remove it). A pointer into an array (``/tubes/1/tube``) only ever
  addresses a row that exists (capture's diff writes a whole array when its rows change in number),
  so removing a row's only leaf leaves the row in place for the events that refill it.
* ``status_change`` with a ``record``: the record's status is ``new``.
* ``missing_flag`` with a ``record`` and a ``field``: set or (``new`` absent) remove that flag.
* ``enrol``/``subject_state``/``withdraw`` with a ``subject``: the subject's state is ``new``.
* ``randomize`` with a ``subject`` and the field ``/arm``: the subject's arm is ``new``
  (ecrf.randomization, the one writer of an arm).
* ``sign`` whose ``new`` is ``{"signature": id, "records": [ids], "hash", ...}`` (ecrf.review):
  the signature, with a copy of the signed records as the log had them at that moment, so the
  caller can recompute the signed hash from the log alone.
* ``report_generated`` with a ``field``: what the log recorded of an issued document (an SAE report
  ``/sae-reports/<number>/<version>``, its receipt ``.../received``; ecrf.reports.issued), by study
  and field, so the caller can prove the stored documents are the ones issued.

Rows are sequences of the stored columns in ``EVENT_COLUMNS`` order (database rows as the audit
queries select them, or plain tuples); replay reads them by position, since verify feeds it every
event of the log. It reads only the columns in ``READS``: a row may hold None for the others and end
after the last of them (what verify reads for ranges it checks in another process).
"""
import dataclasses
import json

from audit.canonical import EVENT_COLUMNS
from audit.event import Action

_AT = {name: index for index, name in enumerate(EVENT_COLUMNS)}
_SEQ, _ACTION, _RECORD, _FIELD, _NEW = (_AT[n] for n in ("seq", "action", "record", "field", "new_value"))
_STUDY, _SITE, _SUBJECT, _FORM_VERSION = (_AT[n] for n in ("study", "site", "subject", "form_version"))
_ACTOR = _AT["actor_id"]
#: study, site, subject, visit, form: adjacent columns, read as one slice.
_PLACE = slice(_AT["study"], _AT["form"] + 1)
assert EVENT_COLUMNS[_PLACE] == ("study", "site", "subject", "visit", "form")
#: The columns replay reads; the others may be None (verify then reads far less per event).
READS = frozenset((*(EVENT_COLUMNS[i] for i in (_SEQ, _ACTOR, _ACTION, _FORM_VERSION, _RECORD, _FIELD, _NEW)),
                   *EVENT_COLUMNS[_PLACE]))


@dataclasses.dataclass(slots=True)
class RecordState:
    #: (study, site, subject, visit, form) as the log last gave them.
    place: tuple
    form_version: str | None = None
    data: dict = dataclasses.field(default_factory=dict)
    missing: dict = dataclasses.field(default_factory=dict)
    status: str | None = None
    #: The record's first event. (Its last is not tracked: keeping a reference to every row's
    #: number slowed the replay of a large log by a quarter; ask the log when it is needed.)
    first_seq: int = 0

    @property
    def study(self):
        return self.place[0]

    @property
    def site(self):
        return self.place[1]

    @property
    def subject(self):
        return self.place[2]

    @property
    def visit(self):
        return self.place[3]

    @property
    def form(self):
        return self.place[4]


@dataclasses.dataclass(slots=True)
class ReplayedSignature:
    #: The ``sign`` event's value: signature id, scope, records, hash, printed name, meaning.
    value: dict
    actor_id: int | None
    seq: int
    #: (record id, form, data, missing, status) of each signed record as the log had it then.
    signed: list


@dataclasses.dataclass(slots=True)
class ReplayedDocument:
    #: The event's value, actor, number, (study, site, subject, visit, form) and record.
    value: object
    actor_id: int | None
    seq: int
    place: tuple
    record: int | None


@dataclasses.dataclass(slots=True)
class ReplayedSubject:
    state: object
    site: str | None
    last_seq: int


_RECORD_ACTIONS = frozenset(str(a) for a in (Action.CREATE, Action.UPDATE, Action.CLEAR,
                                             Action.STATUS, Action.MISSING))
_SUBJECT_ACTIONS = frozenset(str(a) for a in (Action.ENROL, Action.SUBJECT_STATE, Action.WITHDRAW))
_STATUS = str(Action.STATUS)
_RANDOMIZE = str(Action.RANDOMIZE)
_SIGN = str(Action.SIGN)
_REPORT = str(Action.REPORT)
_MISSING = str(Action.MISSING)
_loads = json.loads


def load_value(text):
    """A stored value (canonical JSON text, or None for absent) as Python."""
    if text is None:
        return None
    # Fast paths for the commonest values, exactly what json.loads gives for canonical JSON text: a
    # string without escapes, a non-negative integer.
    if text[0] == '"' and "\\" not in text:
        return text[1:-1]
    if text.isdigit() and text.isascii():
        return int(text)
    return _loads(text)


@dataclasses.dataclass
class ReplayState:
    records: dict = dataclasses.field(default_factory=dict)   # record id -> RecordState
    subjects: dict = dataclasses.field(default_factory=dict)  # (study, subject) -> ReplayedSubject
    signatures: dict = dataclasses.field(default_factory=dict)  # signature id -> ReplayedSignature
    documents: dict = dataclasses.field(default_factory=dict)  # (study, field) -> ReplayedDocument
    arms: dict = dataclasses.field(default_factory=dict)  # (study, subject) -> (arm, seq)

    def apply(self, row):
        """Apply one stored event (a row in EVENT_COLUMNS order)."""
        action = row[_ACTION]
        if action in _RECORD_ACTIONS:
            record_id = row[_RECORD]
            if record_id is None:
                return
            # Fields are assigned only when they change: holding on to the row's own strings would
            # keep every batch of rows alive in the allocator, which costs more than the comparison.
            state = self.records.get(record_id)
            place = row[_PLACE]
            if state is None:
                state = self.records[record_id] = RecordState(tuple(place), first_seq=row[_SEQ])
            elif place != state.place:
                state.place = tuple(place)
            form_version = row[_FORM_VERSION]
            if form_version is not None and form_version != state.form_version:
                state.form_version = form_version
            new = row[_NEW]
            field = row[_FIELD]
            if action == _STATUS:
                state.status = load_value(new)
            elif action == _MISSING:
                if new is None:
                    state.missing.pop(field, None)
                else:
                    state.missing[field] = load_value(new)
            elif field is not None:
                if field.rfind("/") == 0 and "~" not in field:  # a top-level field: most events
                    if new is None:
                        state.data.pop(field[1:], None)
                    else:
                        state.data[field[1:]] = load_value(new)
                elif new is None:
                    set_pointer(state.data, field, None, remove=True)
                else:
                    set_pointer(state.data, field, load_value(new))
        elif action in _SUBJECT_ACTIONS and row[_SUBJECT] is not None:
            self.subjects[(row[_STUDY], row[_SUBJECT])] = ReplayedSubject(
                load_value(row[_NEW]), row[_SITE], row[_SEQ])
        elif action == _SIGN and row[_NEW] is not None:
            self._sign(row)
        elif action == _RANDOMIZE and row[_FIELD] == "/arm" and row[_SUBJECT] is not None:
            self.arms[(row[_STUDY], row[_SUBJECT])] = (load_value(row[_NEW]), row[_SEQ])
        elif action == _REPORT and row[_FIELD] is not None:
            self.documents[(row[_STUDY], row[_FIELD])] = ReplayedDocument(
                load_value(row[_NEW]), row[_ACTOR], row[_SEQ], tuple(row[_PLACE]), row[_RECORD])

    def _sign(self, row):
        """A signature (ecrf.review.signatures) and the signed records as the log has them now."""
        value = load_value(row[_NEW])
        if not isinstance(value, dict) or not isinstance(value.get("signature"), int):
            return
        signed = [(rid, state.form, _loads(json.dumps(state.data)), dict(state.missing), state.status)
                  for rid in value.get("records") or () if (state := self.records.get(rid)) is not None]
        self.signatures[value["signature"]] = ReplayedSignature(value, row[_ACTOR], row[_SEQ], signed)


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~") if "~" in token else token


def _tokens(pointer):
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"not a JSON pointer: {pointer!r}")
    return [_unescape(t) for t in pointer[1:].split("/")]


def set_pointer(document, pointer, value, remove=False):
    """Set (or remove) the value at a JSON pointer, creating objects on the way.

    Capture's diff describes a document as its leaves (a non-empty object is the sum of its leaves;
    an empty object is a leaf of its own), and replay follows that model:

    * Removing what is not there is a no-op and creates nothing: the diff may remove a leaf under a
      value it has just replaced (``/g/a`` set to 2, then ``/g/a/a`` removed).
    * An object left empty by a removal goes too (its last leaf went), unless it is an array row.
    * Removing an array element leaves its slot (as None) rather than shifting the rows after it: a
      pointer into an array names a row that keeps its place (see the module docstring).
    """
    tokens = _tokens(pointer)
    if not tokens:
        document.clear()
        if not remove:
            document.update(value)
        return
    target = document
    path = []  # (container, token) from the document down to the target
    for i, token in enumerate(tokens[:-1]):
        child = _get(target, token)
        if remove:
            if not isinstance(child, (dict, list)):
                return
        elif not (isinstance(child, dict) or (isinstance(child, list) and tokens[i + 1].isdigit())):
            child = {}
            _put(target, token, child)
        path.append((target, token))
        target = child
    last = tokens[-1]
    if not remove:
        _put(target, last, value)
    elif isinstance(target, dict):
        if target.pop(last, _ABSENT) is not _ABSENT:
            # Prune objects the removal emptied, up to (not including) an array row or the document.
            while not target and path and isinstance(path[-1][0], dict):
                parent, token = path.pop()
                del parent[token]
                target = parent
    elif last.isdigit() and int(last) < len(target):
        target[int(last)] = None


def _get(target, token):
    if isinstance(target, dict):
        return target.get(token, _ABSENT)
    if token.isdigit() and int(token) < len(target):
        return target[int(token)]
    return _ABSENT


def _put(target, token, value):
    if isinstance(target, dict):
        target[token] = value
        return
    index = int(token)
    while len(target) <= index:
        target.append(None)
    target[index] = value


_ABSENT = object()


def get_pointer(document, pointer, default=None):
    """The value at a JSON pointer, or ``default`` when there is none."""
    target = document
    for token in _tokens(pointer):
        if isinstance(target, dict):
            target = target.get(token, _ABSENT)
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return default
        if target is _ABSENT:
            return default
    return target


def replay(rows):
    """Replay an iterable of stored events into a fresh ReplayState."""
    state = ReplayState()
    for row in rows:
        state.apply(row)
    return state
