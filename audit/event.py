"""What an audit event records."""
import dataclasses
import enum


class Action(enum.StrEnum):
    """Every kind of audited action; stored by value."""

    CREATE = "create"
    UPDATE = "update"
    CLEAR = "clear"
    #: A missing-data flag set or removed on a field (not done / unknown / not applicable).
    MISSING = "missing_flag"
    STATUS = "status_change"
    SIGN = "sign"
    VERIFY = "verify"
    LOCK = "lock"
    UNLOCK = "unlock"
    QUERY = "query"
    ENROL = "enrol"
    #: A visit date entered or changed, or an unscheduled visit added (field /visit_date).
    VISIT = "visit_date"
    SUBJECT_STATE = "subject_state"
    WITHDRAW = "withdraw"
    RANDOMIZE = "randomize"
    UNBLIND = "unblind"
    REPORT = "report_generated"
    EXPORT = "export"
    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login_failed"
    LOCKOUT = "lockout"
    PERMISSION_DENIED = "permission_denied"
    STUDY_LOADED = "study_loaded"
    SITE = "site_change"
    USER = "user_change"
    ROLE = "role_change"
    TOKEN = "token_change"


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """Where an action came from: ``channel`` is page, api, cli, import or system."""

    channel: str = "system"
    ip: str | None = None
    user_agent: str | None = None


SYSTEM = RequestContext()


@dataclasses.dataclass(frozen=True)
class Event:
    """One audited fact, before the log gives it a sequence number, a time and its hashes.

    ``field`` is a JSON pointer into the record's document (``/sbp``, ``/tubes/1/tube``) or ``None``
    for actions on a whole object; ``old``/``new`` are JSON values (``None`` means absent).
    """

    action: Action
    actor_id: int | None = None
    actor_name: str | None = None
    actor_role: str | None = None
    study: str | None = None
    site: str | None = None
    subject: str | None = None
    visit: str | None = None
    form: str | None = None
    form_version: str | None = None
    record: int | None = None
    field: str | None = None
    old: object = None
    new: object = None
    reason: str | None = None
    context: RequestContext = SYSTEM
