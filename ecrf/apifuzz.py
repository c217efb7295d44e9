"""Fuzzing the JSON API from its own OpenAPI document with schemathesis, in-process (WSGI).

``seed`` fills a database with what the fuzzer needs to reach deep paths (a study with log forms, a
subject, an AE record, a query, a bearer token); ``run`` generates requests for every operation of
/api/v1/openapi.json, in two flavours each (any path parameters, and the seeded ones so bodies and
queries reach the services), positive and negative, and checks every answer: no server error, a
documented status code and content type, and a body that matches the documented schema.

The test suite runs it with a few examples per operation (tests/api/test_fuzz_api.py); the bench
(bench/fuzz_api.py) at full size. Schemathesis is a test dependency, imported only by ``run``.
"""
import dataclasses
import datetime as dt

#: The reference study the fuzzer works in (visit forms and log forms, an AE log).
STUDY = "mesrix-ii"
VISIT, VISIT_FORM, LOG_FORM = "screening", "vs", "ae"
USERNAME = "fuzzer"
PASSWORD = "a long fuzzing passphrase 9"


@dataclasses.dataclass(frozen=True)
class Target:
    """The seeded ids and the token the fuzzer uses."""

    token: str
    study: str
    site: str
    subject: str
    #: The AE record's entry number (in API paths) and its id (in review pages' paths).
    record: int
    record_id: int

    def path_parameters(self, path):
        """Known-good values for the parameters of ``path`` (an OpenAPI path template)."""
        known = {"study": self.study, "subject": self.subject, "visit": VISIT, "record": self.record,
                 "form": VISIT_FORM if "/visits/" in path else LOG_FORM, "number": "SAE-1", "version": 1}
        return {name: value for name, value in known.items() if "{" + name + "}" in path}


@dataclasses.dataclass
class Result:
    operations: int = 0
    requests: int = 0
    #: One line per failed check: "METHOD /path -> status: what failed".
    failures: list = dataclasses.field(default_factory=list)


def seed(session, actor):
    """Publish the fuzzing study and add an investigator with a token, a subject and an AE record,
    all through the audited services; return the ``Target``."""
    from ecrf.auth import accounts
    from ecrf.capture.service import enrol_subject, save_form
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.demo import sample_document
    from ecrf.errors import Invalid
    from ecrf.paths import resource
    from ecrf.studies import definition, get_study, list_sites

    study = load_study(resource("forms") / STUDY)
    publish_study(session, actor, study)
    site = list_sites(session, get_study(session, STUDY))[0].key
    accounts.create_user(session, actor, USERNAME, PASSWORD, must_change_password=False)
    accounts.grant_role(session, actor, USERNAME, STUDY, "investigator")
    subject = enrol_subject(session, actor, STUDY, site).key
    spec = definition(get_study(session, STUDY))
    try:
        data = sample_document(spec.forms[LOG_FORM], dt.date.today())
        record = save_form(session, actor, STUDY, subject, "", LOG_FORM, data).record
    except Invalid:
        record = save_form(session, actor, STUDY, subject, "", LOG_FORM, {}).record
    return Target(accounts.create_token(session, actor, USERNAME), STUDY, site, subject, record.seq,
                  record.id)


def run(app, target, max_examples=10, seed=None):
    """Fuzz every API operation of ``app``; return a ``Result``. ``seed`` None: derandomized (the
    same requests every run); an integer: a reproducible run of its own."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import strategies as st
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi import checks

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {target.token}"}
    chosen = [schemathesis.checks.not_a_server_error, checks.status_code_conformance,
              checks.content_type_conformance, checks.response_headers_conformance,
              checks.response_schema_conformance]
    result = Result()
    config = settings(max_examples=max_examples, derandomize=seed is None, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                      print_blob=False)
    for found in schema.get_all_operations():
        operation = found.ok()
        result.operations += 1
        known = target.path_parameters(operation.path)
        strategy = st.one_of(*(operation.as_strategy(generation_mode=mode, **extra)
                               for mode in (schemathesis.GenerationMode.POSITIVE,
                                            schemathesis.GenerationMode.NEGATIVE)
                               for extra in ({}, {"path_parameters": known})))

        @config
        @hypothesis.given(case=strategy)
        def fuzz(case):
            response = case.call(headers=headers)
            result.requests += 1
            try:
                case.validate_response(response, checks=chosen, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    message = " ".join(str(getattr(failure, "message", "")).split())[:300]
                    result.failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                           f"{getattr(failure, 'title', failure)}: {message}")

        if seed is not None:
            fuzz = hypothesis.seed(seed)(fuzz)
        fuzz()
    return result
