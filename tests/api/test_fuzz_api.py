"""Schemathesis against the running app (in-process WSGI), from the app's own OpenAPI document:
every operation, positive and negative requests, with seeded ids so requests reach the services.
No answer may be a server error or differ from the document (status, content type, body schema).

A bounded, derandomized run (the same requests every time); bench/fuzz_api.py runs it at full size.
"""
from ecrf import apifuzz

EXAMPLES = 12


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(app, db, actor):
    target = apifuzz.seed(db, actor)
    result = apifuzz.run(app, target, max_examples=EXAMPLES)
    assert result.operations >= 15
    assert result.requests >= result.operations * EXAMPLES // 2
    assert result.failures == []
