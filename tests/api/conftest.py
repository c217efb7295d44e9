"""The ``api`` fixture: call the JSON API through real tokens, every response checked against the
OpenAPI document."""
import json

import jsonschema
import pytest

from ecrf.auth.accounts import create_token


@pytest.fixture
def api(client, app, db, actor, load_study, make_user):
    """Call the API as a user: ``api("nurse").get(path)``; responses validated against openapi.json."""
    load_study("demo")
    from ecrf.studies import add_site
    add_site(db, actor, "demo", "01", "Odense")
    add_site(db, actor, "demo", "02", "Aarhus")
    make_user("nurse", "site_staff", "demo", sites=["01"])
    make_user("monitor", "monitor", "demo")
    spec = client.get("/api/v1/openapi.json").get_json()

    class Caller:
        def __init__(self, username):
            self.headers = {"Authorization": f"Bearer {create_token(db, actor, username)}"}

        def call(self, method, path, body=None, raw=None, content_type="application/json", expect=None,
                 headers=None):
            data = raw if raw is not None else (json.dumps(body) if body is not None else None)
            response = client.open(path, method=method, data=data, headers={**self.headers, **(headers or {})},
                                   content_type=content_type if data is not None else None)
            _check_against_spec(spec, method, path, response)
            if expect is not None:
                assert response.status_code == expect, response.get_data(as_text=True)
            return response

    return Caller


def _check_against_spec(spec, method, path, response):
    """The response's status is documented for this path and its body matches the schema."""
    import re
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path.split("?")[0]):
            operation = item[method.lower()]
            documented = operation["responses"].get(str(response.status_code))
            assert documented, f"{method} {template} answered {response.status_code}, undocumented"
            for header in documented.get("headers", {}):
                assert header in response.headers, f"{method} {template}: no {header} header"
            schema = documented["content"]["application/json"]["schema"]
            resolver_schema = dict(schema, components=spec["components"])
            jsonschema.validate(response.get_json(), resolver_schema,
                                cls=jsonschema.Draft202012Validator)
            return
    raise AssertionError(f"{path} is not in the OpenAPI document")
