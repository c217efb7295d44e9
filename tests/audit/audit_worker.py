"""A separate process writing through the capture services at the same time as others
(tests/audit/test_audit_concurrency.py). Kept out of the test module so spawned processes can import it."""

STUDY = "audit-trial"
SUBJECTS = 5
#: Events one subject's operations write: enrol 1; vitals created 2 (/sbp, status) then completed with
#: a correction 3 (/assessed, /sbp, status); two adverse events 2 (/term, status) and 3 (+ /grade).
EVENTS_PER_SUBJECT = 1 + 2 + 3 + 2 + 3
#: enrol + four saves per subject.
OPERATIONS_PER_SUBJECT = 5


def run(url, worker, site, start):
    """Wait for ``start``, then enrol SUBJECTS subjects at ``site`` and save their forms, each
    operation its own committed transaction."""
    from audit import RequestContext
    from ecrf.actor import Actor
    from ecrf.capture.service import enrol_subject, save_form
    from ecrf.db import make_engine, make_session_factory

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    actor = Actor(None, f"worker-{worker}", "site_staff", RequestContext(channel="system"))
    start.wait(60)
    try:
        for n in range(SUBJECTS):
            key = f"W{worker}-{n:03}"
            with sessions() as session:
                enrol_subject(session, actor, STUDY, site, key)
            with sessions() as session:
                save_form(session, actor, STUDY, key, "baseline", "vitals", {"sbp": 120 + n})
            with sessions() as session:
                save_form(session, actor, STUDY, key, "baseline", "vitals",
                          {"sbp": 121 + n, "assessed": "2026-11-02"}, complete=True, reason="corrected")
            with sessions() as session:
                save_form(session, actor, STUDY, key, "", "ae", {"term": "Headache"})
            with sessions() as session:
                save_form(session, actor, STUDY, key, "", "ae", {"term": "Nausea", "grade": 2})
    finally:
        engine.dispose()
