"""A small trial for the review tests: study ``revw`` (visit forms vitals with a soft check and labs,
log form cm), sites 01 and 02, one user per role, and a subject at each site."""
import dataclasses
from pathlib import Path

import pytest

from audit import RequestContext
from ecrf.actor import Actor

STUDY = Path(__file__).parent / "revw"
PASSWORD = "correct horse battery"


@dataclasses.dataclass
class Trial:
    db: object
    users: dict

    def actor(self, username, role=None, channel="page"):
        user = self.users[username]
        return Actor.for_user(user, RequestContext(channel=channel), role)

    def save(self, subject, visit, form, data, *, complete=True, reason=None, seq=None, who="nurse"):
        from ecrf.capture.service import save_form

        return save_form(self.db, self.actor(who, "site_staff"), "revw", subject, visit, form, data,
                         complete=complete, reason=reason, seq=seq).record

    def record(self, subject, visit, form, seq=1):
        from ecrf.capture.service import get_record, get_subject
        from ecrf.studies import get_study

        return get_record(self.db, get_subject(self.db, get_study(self.db, "revw"), subject), visit, form, seq)


@pytest.fixture
def trial(db, actor, load_study, make_user):
    from ecrf.capture.service import enrol_subject
    from ecrf.studies import add_site

    load_study(STUDY)
    add_site(db, actor, "revw", "01", "Odense", "Europe/Copenhagen")
    add_site(db, actor, "revw", "02", "Aarhus")
    users = {
        "nurse": make_user("nurse", "site_staff", "revw", sites=["01"]),
        "doc": make_user("doc", "investigator", "revw", sites=["01"]),
        "mon": make_user("mon", "monitor", "revw"),
        "dm": make_user("dm", "data_manager", "revw"),
        "admin": make_user("admin", "admin", "revw"),
        "sponsor": make_user("sponsor", "sponsor", "revw"),
    }
    enrol_subject(db, actor, "revw", "01", "01-001")
    enrol_subject(db, actor, "revw", "02", "02-001")
    return Trial(db, users)
