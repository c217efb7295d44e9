"""A separate process randomizing subjects at the same time as others
(tests/randomization/test_concurrency.py, bench/randomization.py). Kept out of the test module so
spawned processes can import it."""


def run(url, study, keys, start, results=None):
    """Wait for ``start``, then randomize each subject of ``keys``, each in its own transaction;
    put (key, number) on ``results`` when given."""
    from audit import RequestContext
    from ecrf.actor import Actor
    from ecrf.db import make_engine, make_session_factory
    from ecrf.randomization.service import randomize

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    actor = Actor(None, "worker", "investigator", RequestContext(channel="system"))
    start.wait(60)
    try:
        for key in keys:
            with sessions() as session:
                row = randomize(session, actor, study, key)
                if results is not None:
                    results.put((key, row.randomization_number))
    finally:
        engine.dispose()
