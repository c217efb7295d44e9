"""Reading the audit trail: filtered pages of events, one field's history, a record as it was at a
past moment, and exports. Plain functions on a session; the pages and the CLI call these.

Who sees what is decided once, in ``scope_for`` (the permission table's ``audit.view``): monitors and
data managers see every event of their study, site staff and investigators limited to some sites see
only those sites' events, and sponsors and pharmacists none. Events about patients (those naming a
subject or a form record) follow the permission of the data they describe (``form.view`` at their
site, ``permissions.AUDIT_DATA_ACTION``): an administrator reads the study's configuration events
and refusals, never a clinical value. Events of other studies never show.
Allocation values (randomization and unblinding events, a subject's ``/arm``) are masked for anyone
``ecrf.randomization.can_see_arm`` (the one blinding check) does not let see arms.
"""
import csv
import dataclasses
import datetime as dt
import io
import json

from sqlalchemy import and_, false, or_, select

from audit import Action, ReplayState, append, audit_event, get_pointer
from audit.canonical import dumps
from audit.verify import COLUMNS, iter_events
from ecrf.auth import permissions
from ecrf.db import write_transaction
from ecrf.errors import Invalid, NotFound
from ecrf.models import Site
from ecrf.randomization import can_see_arm, masking

PAGE_SIZE = 50
EXPORT_FORMATS = ("csv", "jsonl")
#: Shown instead of an allocation value to a viewer who may not see arms.
BLINDED = "(blinded)"
_ALLOCATION_ACTIONS = frozenset({str(Action.RANDOMIZE), str(Action.UNBLIND)})
_ALLOCATION_FIELD = "/arm"
_DATA_ACTIONS = frozenset(str(a) for a in (Action.CREATE, Action.UPDATE, Action.CLEAR))
#: The largest record id a filter may name (the column is a 32-bit integer).
_MAX_RECORD = 2**31 - 1


# --- who sees what ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AuditScope:
    """What one viewer may read of one study's log, or (``study`` None) of the events that belong to
    no study: sign-ins, sign-outs, failed sign-ins, lockouts, account and token changes."""

    study: str | None
    #: Site keys whose events show; None means every site and the study-level events.
    site_keys: frozenset | None = None
    #: Whether allocation values show (otherwise they read BLINDED).
    arm_visible: bool = False
    #: The role that grants the access (named in the audit event of an export).
    role: str | None = None
    #: Ids of the users whose actions show, and the field pointers (``/users/<name>/…``) of the
    #: account events about users that show whoever acted; None means every event.
    actor_ids: frozenset | None = None
    account_fields: frozenset = frozenset()
    #: Site keys whose events about patients (a subject or a form record) show; None means every
    #: site's. Events about no patient follow ``site_keys`` alone.
    data_site_keys: frozenset | None = None

    def sees_site(self, site_key):
        return self.site_keys is None or site_key in self.site_keys

    def sees_data(self, site_key):
        """Whether events about patients at ``site_key`` show."""
        return self.sees_site(site_key) and (self.data_site_keys is None or site_key in self.data_site_keys)


def scope_for(session, user, study):
    """The viewer's scope in ``study``; raises NotFound/PermissionDenied like ``permissions.require``."""
    role = permissions.require(session, user, "audit.view", study)
    site_keys = _site_keys(session, permissions.visible_site_ids(session, user, "audit.view", study))
    data_keys = _site_keys(session, permissions.visible_site_ids(session, user, permissions.AUDIT_DATA_ACTION,
                                                                 study))
    return AuditScope(study.key, site_keys, arm_visible=can_see_arm(session, user, study), role=role,
                      data_site_keys=data_keys)


def _site_keys(session, site_ids):
    """The keys of ``site_ids`` (None, every site, stays None)."""
    if site_ids is None:
        return None
    return frozenset(session.scalars(select(Site.key).where(Site.id.in_(site_ids or [-1]))))


def operator_scope(study, unblinded=False):
    """The scope of the operator at the command line: every site; allocation values only in an
    open-label study or when asked for (``--unblinded``, which the export's audit event records)."""
    return AuditScope(study.key, None, arm_visible=unblinded or masking(study) == "none")


def account_scope_for(session, user):
    """The scope of an administrator in the events of no study: those of the users they may manage
    (``accounts.users_for_admin``) and the changes made to those users' accounts by anyone, so one
    study's administrators do not read another's sign-ins. Raises PermissionDenied for anyone who
    administers no study."""
    from ecrf.auth import accounts

    study_ids = permissions.require_somewhere(session, user, "users.manage")
    users = accounts.users_for_admin(session, study_ids)
    fields = frozenset(accounts.user_pointer(u.username, attribute) for u in users
                       for attribute in accounts.ACCOUNT_ATTRIBUTES)
    return AuditScope(None, None, arm_visible=False, role="admin",
                      actor_ids=frozenset(u.id for u in users), account_fields=fields)


def operator_account_scope():
    """The operator's scope at the command line in the events of no study: every one of them,
    failed sign-ins with unknown usernames included."""
    return AuditScope(None, None)


def _blinded(row, scope):
    if scope.arm_visible:
        return False
    field = row.field or ""
    return (row.action in _ALLOCATION_ACTIONS or field == _ALLOCATION_FIELD
            or field.startswith(_ALLOCATION_FIELD + "/"))


# --- filters ---------------------------------------------------------------------------------------

def parse_moment(value, *, end_of_day=False):
    """A UTC datetime from a datetime or ISO 8601 text: a date (its start, or with ``end_of_day`` the
    start of the next day) or a date-time with ``Z`` or an offset (without one it is taken as UTC)."""
    text = value if isinstance(value, dt.datetime) else str(value or "").strip()
    try:
        if isinstance(text, dt.datetime):
            moment = text
        elif len(text) == 10:
            day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if end_of_day else 0)
            moment = dt.datetime.combine(day, dt.time())
        else:
            # In a query string a "+01:00" offset arrives as " 01:00".
            moment = dt.datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise Invalid(f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-23 or "
                      "2026-11-23T08:40:00Z)") from None


def ts_text(moment):
    """A UTC datetime as the log stores times (sortable text: ``2026-11-23T08:40:00.123456Z``)."""
    m = moment.astimezone(dt.timezone.utc)
    return (f"{m.year:04}-{m.month:02}-{m.day:02}T{m.hour:02}:{m.minute:02}:{m.second:02}."
            f"{m.microsecond:06}Z")


@dataclasses.dataclass(frozen=True)
class AuditFilters:
    """What to show; every filter is optional. ``since``/``until`` are ISO dates or date-times (UTC),
    both inclusive; ``field`` matches a pointer and everything under it."""

    site: str | None = None
    subject: str | None = None
    visit: str | None = None
    form: str | None = None
    field: str | None = None
    user: str | None = None
    action: str | None = None
    record: int | None = None
    since: str | None = None
    until: str | None = None

    NAMES = ("site", "subject", "visit", "form", "field", "user", "action", "record", "since", "until")

    @classmethod
    def from_mapping(cls, args):
        """Filters from request arguments (or any mapping); empty values mean no filter."""
        values = {}
        for name in cls.NAMES:
            value = args.get(name)
            if isinstance(value, str):
                value = value.strip()
            if value in (None, ""):
                continue
            if len(str(value)) > 500:
                raise Invalid(f"the {name} filter is too long")
            values[name] = value
        if "record" in values:
            text = str(values["record"])
            if not text.isdigit() or not 0 < int(text) <= _MAX_RECORD:
                raise Invalid("record must be a form record number")
            values["record"] = int(text)
        if "action" in values and values["action"] not in {str(a) for a in Action}:
            raise Invalid(f"unknown action {values['action']!r}")
        filters = cls(**values)
        filters.bounds()  # reject malformed dates now
        return filters

    def bounds(self):
        """``(lowest ts, highest ts)`` as stored text, either None."""
        low = ts_text(parse_moment(self.since)) if self.since else None
        high = None
        if self.until:
            end = parse_moment(self.until, end_of_day=True)
            # A bare date includes its whole day: everything before the next midnight.
            high = ts_text(end - dt.timedelta(microseconds=1)) if len(str(self.until).strip()) == 10 \
                else ts_text(end)
        return low, high

    def params(self):
        """The non-empty filters, for links and the export's audit event."""
        return {name: getattr(self, name) for name in self.NAMES if getattr(self, name) not in (None, "")}


def _conditions(scope, filters):
    c = audit_event.c
    where = [c.study == scope.study if scope.study is not None else c.study.is_(None)]
    if scope.actor_ids is not None:
        where.append(or_(c.actor_id.in_(sorted(scope.actor_ids)) if scope.actor_ids else false(),
                         c.field.in_(sorted(scope.account_fields)) if scope.account_fields else false()))
    if scope.site_keys is not None:
        where.append(c.site.in_(sorted(scope.site_keys)) if scope.site_keys else false())
    if scope.data_site_keys is not None:
        about_no_patient = and_(c.subject.is_(None), c.record.is_(None))
        where.append(or_(about_no_patient, c.site.in_(sorted(scope.data_site_keys)))
                     if scope.data_site_keys else about_no_patient)
    for name in ("site", "subject", "visit", "form", "action", "record"):
        value = getattr(filters, name)
        if value is not None:
            where.append(c[name] == value)
    if filters.user is not None:
        where.append(c.actor_name == filters.user)
    if filters.field is not None:
        where.append(or_(c.field == filters.field, c.field.startswith(filters.field + "/", autoescape=True)))
    low, high = filters.bounds()
    if low is not None:
        where.append(c.ts >= low)
    if high is not None:
        where.append(c.ts <= high)
    return where


# --- events as the pages show them ----------------------------------------------------------------

def display_value(value):
    """A JSON value as a person reads it: text as is, anything else as JSON, absent as None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return dumps(value)


def _stored_display(text):
    return None if text is None else display_value(json.loads(text))


@dataclasses.dataclass(frozen=True)
class EventView:
    seq: int
    ts: str
    actor_id: int | None
    actor_name: str | None
    actor_role: str | None
    action: str
    study: str | None
    site: str | None
    subject: str | None
    visit: str | None
    form: str | None
    form_version: str | None
    record: int | None
    field: str | None
    old: str | None
    new: str | None
    reason: str | None
    channel: str
    ip: str | None
    user_agent: str | None
    hash: str
    blinded: bool = False


def present(row, scope):
    """An EventView of a stored event, with allocation values masked when the scope says so."""
    blinded = _blinded(row, scope)
    return EventView(
        row.seq, row.ts, row.actor_id, row.actor_name, row.actor_role, row.action, row.study, row.site,
        row.subject, row.visit, row.form, row.form_version, row.record, row.field,
        BLINDED if blinded and row.old_value is not None else _stored_display(row.old_value),
        BLINDED if blinded and row.new_value is not None else _stored_display(row.new_value),
        BLINDED if blinded and row.reason else row.reason,
        row.channel, row.ip, row.user_agent, row.hash, blinded)


@dataclasses.dataclass(frozen=True)
class EventPage:
    events: list
    #: Cursors for the neighbouring pages (``after=`` newer, ``before=`` older), None at either end.
    newer: int | None
    older: int | None


def query_events(session, scope, filters=AuditFilters(), *, before=None, after=None, limit=PAGE_SIZE):
    """One page of matching events, newest first. ``before``/``after`` are sequence numbers from a
    previous page's ``older``/``newer`` (keyset paging: any page costs the same however deep)."""
    where = _conditions(scope, filters)
    seq = audit_event.c.seq
    query = _select().where(*where)
    if after is not None:
        rows = session.execute(query.where(seq > after).order_by(seq.asc()).limit(limit + 1)).all()
        more_newer = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        more_older = True
    else:
        if before is not None:
            query = query.where(seq < before)
        rows = session.execute(query.order_by(seq.desc()).limit(limit + 1)).all()
        more_older = len(rows) > limit
        rows = rows[:limit]
        more_newer = before is not None
    if rows and more_newer and after is None:
        more_newer = _exists(session, where, seq > rows[0].seq)
    if rows and more_older and after is not None:
        more_older = _exists(session, where, seq < rows[-1].seq)
    events = [present(row, scope) for row in rows]
    return EventPage(events, events[0].seq if events and more_newer else None,
                     events[-1].seq if events and more_older else None)


def _select():
    return select(*(audit_event.c[name] for name in COLUMNS))


def _exists(session, where, condition):
    return session.execute(select(audit_event.c.seq).where(*where, condition).limit(1)).first() is not None


# --- one record: a field's history, the record at a past moment ------------------------------------

def _check_record_id(record_id):
    if not isinstance(record_id, int) or isinstance(record_id, bool) or not 0 < record_id <= _MAX_RECORD:
        raise NotFound("no such form record")


def _record_rows(session, scope, record_id):
    """Every event of one form record, in order, if the scope may see it; NotFound otherwise."""
    _check_record_id(record_id)
    c = audit_event.c
    rows = session.execute(_select().where(c.record == record_id, c.study == scope.study)
                           .order_by(c.seq)).all()
    if not rows or not scope.sees_data(rows[-1].site):
        raise NotFound("no such form record")
    return rows


def _check_pointer(pointer):
    if not isinstance(pointer, str) or not pointer.startswith("/") or len(pointer) > 1000:
        raise Invalid("field must be a JSON pointer such as /sbp or /tubes/0/volume")
    return pointer


def _related(event_field, pointer):
    """Whether an event on ``event_field`` can change the value at ``pointer``."""
    return (event_field == pointer or pointer.startswith(event_field + "/")
            or event_field.startswith(pointer + "/"))


@dataclasses.dataclass(frozen=True)
class FieldChange:
    event: EventView
    #: The field's value before and after this event, as displayed (None: empty).
    before: str | None
    after: str | None


@dataclasses.dataclass(frozen=True)
class FieldHistory:
    record: int
    study: str
    site: str | None
    subject: str
    visit: str | None
    form: str
    field: str
    changes: list


_ABSENT = object()


def _value_text(value):
    return None if value is _ABSENT else display_value(value)


def field_history(session, scope, record_id, pointer):
    """Every change to the value at ``pointer`` in one form record, oldest first: events on the field
    itself, on what lies under it (a group's rows), and on what contains it (a whole group saved at
    once), each with the field's value before and after. Missing-data flags on the field are included."""
    pointer = _check_pointer(pointer)
    rows = _record_rows(session, scope, record_id)
    state = ReplayState()
    changes = []
    for row in rows:
        related = row.field is not None and _related(row.field, pointer)
        if related and row.action in _DATA_ACTIONS:
            document = state.records[row.record].data if row.record in state.records else {}
            before = get_pointer(document, pointer, _ABSENT)
            before_text = _value_text(before)
            state.apply(row)
            after_text = _value_text(get_pointer(state.records[row.record].data, pointer, _ABSENT))
            if before_text != after_text or row.field == pointer:
                event = present(row, scope)
                if event.blinded:
                    before_text = after_text = BLINDED
                changes.append(FieldChange(event, before_text, after_text))
            continue
        state.apply(row)
        if row.action == str(Action.MISSING) and row.field == pointer:
            event = present(row, scope)
            changes.append(FieldChange(event, event.old, event.new))
    last = rows[-1]
    return FieldHistory(record_id, last.study, last.site, last.subject, last.visit, last.form, pointer,
                        changes)


@dataclasses.dataclass(frozen=True)
class RecordSnapshot:
    """A form record rebuilt from the log as it stood at ``at``."""

    record: int
    study: str
    site: str | None
    subject: str
    visit: str | None
    form: str
    #: The moment asked about, as stored-format UTC text.
    at: str
    #: False when the record had no events yet at that moment.
    exists: bool
    data: dict
    missing: dict
    status: str | None
    form_version: str | None
    #: The last event applied (None when the record did not exist yet).
    last_seq: int | None
    last_ts: str | None

    def fields(self):
        """``[(pointer, displayed value)]`` of every value, rows of a group one field at a time."""
        return [(pointer, display_value(value)) for pointer, value in _flatten(self.data)]


def _flatten(value, pointer=""):
    if isinstance(value, dict):
        out = []
        for key, sub in value.items():
            out.extend(_flatten(sub, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"))
        return out
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        out = []
        for index, row in enumerate(value):
            out.extend(_flatten(row, f"{pointer}/{index}") or [(f"{pointer}/{index}", {})])
        return out
    return [(pointer, value)]


def record_as_of(session, record_id, timestamp=None, scope=None):
    """Rebuild form record ``record_id`` from the log as it was at ``timestamp`` (a datetime or ISO
    text; None: now). ``scope`` limits it to what a viewer may see (None: no limit, for services).
    Raises NotFound when the log has no such record (or the scope may not see it)."""
    if scope is None:
        _check_record_id(record_id)
        row = session.execute(select(audit_event.c.study).where(
            audit_event.c.record == record_id).limit(1)).first()
        if row is None:
            raise NotFound("no such form record")
        scope = AuditScope(row.study, None, arm_visible=True)
    moment = parse_moment(timestamp) if timestamp is not None else dt.datetime.now(dt.timezone.utc)
    at = ts_text(moment)
    rows = _record_rows(session, scope, record_id)
    state = ReplayState()
    last = None
    for row in rows:
        if row.ts > at:
            break  # the log is in time order: nothing after this had happened yet
        state.apply(row)
        last = row
    first = rows[0]
    replayed = state.records.get(record_id)
    if replayed is None:
        return RecordSnapshot(record_id, first.study, first.site, first.subject, first.visit, first.form,
                              at, False, {}, {}, None, None, None, None)
    return RecordSnapshot(record_id, replayed.study, replayed.site, replayed.subject, replayed.visit,
                          replayed.form, at, True, replayed.data, replayed.missing, replayed.status,
                          replayed.form_version, last.seq, last.ts)


# --- export ----------------------------------------------------------------------------------------

#: Leading characters a spreadsheet reads as a formula (OWASP adds tab and carriage return).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text):
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a ``'`` before it,
    and so does text that already starts with ``'`` before one (``'=x`` -> ``''=x``), so that
    ``unneutralise`` gives every text back exactly."""
    if isinstance(text, str) and text.lstrip("'").startswith(_FORMULA_START):
        return "'" + text
    return text


def unneutralise(text):
    """The text ``neutralise`` was given (a CSV cell read back)."""
    if text.startswith("'") and text[1:].lstrip("'").startswith(_FORMULA_START):
        return text[1:]
    return text


@dataclasses.dataclass(frozen=True)
class ExportResult:
    format: str
    events: int
    #: The last event exported (0 when none matched).
    through_seq: int


def _csv_cells(row, scope):
    event = present(row, scope)
    cells = []
    for name in COLUMNS:
        if name == "old_value":
            value = event.old
        elif name == "new_value":
            value = event.new
        elif name == "reason":
            value = event.reason
        else:
            value = getattr(row, name)
        cells.append("" if value is None else neutralise(str(value)))
    return cells


def _json_line(row, scope):
    item = {name: getattr(row, name) for name in COLUMNS}
    blinded = _blinded(row, scope)
    if blinded:
        item.update(old_value=None, new_value=None, reason=None)
    item["blinded"] = blinded
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_events(session, actor, scope, fmt, out, filters=AuditFilters()):
    """Write the matching events, oldest first, to the binary file ``out`` and record the export in
    the log (``Action.EXPORT``). The CLI and the download button both call this.

    ``csv`` is for spreadsheets (UTF-8 with a byte-order mark, values as a person reads them, formula
    characters neutralised); ``jsonl`` keeps every column exactly as stored, so the chain of an
    unfiltered, unmasked export can be re-verified elsewhere with the documented hash.
    """
    if fmt not in EXPORT_FORMATS:
        raise Invalid(f"unknown export format {fmt!r}; use csv or jsonl")
    query = _select().where(*_conditions(scope, filters)).order_by(audit_event.c.seq)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    count = last = 0
    try:
        if fmt == "csv":
            text.write("\ufeff")
            writer = csv.writer(text)
            writer.writerow(COLUMNS)
        rows = iter_events(session.connection(), query)
        try:
            for row in rows:
                if fmt == "csv":
                    writer.writerow(_csv_cells(row, scope))
                else:
                    text.write(_json_line(row, scope))
                count += 1
                last = row.seq
        finally:
            rows.close()
        text.flush()
    finally:
        text.detach()
    described = {"format": fmt, "events": count, "through_seq": last, "filters": filters.params()}
    if scope.site_keys is not None:
        described["sites"] = sorted(scope.site_keys)
    if scope.arm_visible:
        described["allocation"] = "shown"
    with write_transaction(session):
        append(session.connection(), actor.with_role(scope.role or actor.role).event(
            Action.EXPORT, study=scope.study, site=filters.site, subject=filters.subject,
            field="/audit", new=described, reason=f"audit trail export ({fmt}, {count} events)"))
    return ExportResult(fmt, count, last)
