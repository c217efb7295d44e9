"""ORM models, one module per concept. Import from here so every table is registered."""
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

__all__ = [
    "ROLES", "ApiToken", "FormRecord", "FormVersion", "RecordStatus", "RoleGrant", "Site", "Study",
    "StudyVersion", "StudyVersionForm", "Subject", "SubjectState", "SubjectVisit", "User",
    "SaeReceipt", "SaeReport", "Allocation", "AllocationList", "AllocationSlot", "Unblinding",
    "DataQuery", "FormStash", "Lock", "LockScope", "QueryMessage", "QueryState", "Signature", "Verification",
]
