"""ORM models, one module per concept. Import from here so every table is registered."""
from ecrf.models.idempotency import IdempotencyKey
from ecrf.models.randomization import Allocation, AllocationList, AllocationSlot, Unblinding
from ecrf.models.record import FormRecord, RecordStatus
from ecrf.models.report import SaeReceipt, SaeReport
from ecrf.models.review import (DataQuery, FormStash, Lock, LockScope, QueryMessage, QueryState,
                                Signature, Verification)
from ecrf.models.site import Site
from ecrf.models.study import FormVersion, Study, StudyVersion, StudyVersionForm
from ecrf.models.subject import Subject, SubjectState
from ecrf.models.user import ROLES, ApiToken, RoleGrant, User
from ecrf.models.visit import SubjectVisit
from ecrf.models.websession import LoginThrottle, WebSession

__all__ = [
    "ROLES", "ApiToken", "IdempotencyKey", "FormRecord", "FormVersion", "RecordStatus", "RoleGrant", "Site", "Study",
    "StudyVersion", "StudyVersionForm", "Subject", "SubjectState", "SubjectVisit", "User",
    "SaeReceipt", "SaeReport", "LoginThrottle", "WebSession", "Allocation", "AllocationList",
    "AllocationSlot", "Unblinding",
    "DataQuery", "FormStash", "Lock", "LockScope", "QueryMessage", "QueryState", "Signature", "Verification",
]
