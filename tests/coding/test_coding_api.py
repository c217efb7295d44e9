"""GET /api/v1/coding/ctcae: any user with a role that views forms somewhere may search."""
import jsonschema
import pytest

from ecrf.auth.accounts import create_token

URL = "/api/v1/coding/ctcae"


@pytest.fixture
def token(db, actor, load_study, make_user):
    load_study("demo")

    def make(username, role=None):
        make_user(username, role, "demo" if role else None)
        return {"Authorization": f"Bearer {create_token(db, actor, username)}"}

    return make


def _documented(client, response):
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = spec["paths"][URL]["get"]["responses"][str(response.status_code)]
    schema = dict(documented["content"]["application/json"]["schema"], components=spec["components"])
    jsonschema.validate(response.get_json(), schema, cls=jsonschema.Draft202012Validator)


def test_search_with_a_token(client, token):
    response = client.get(URL, query_string={"q": "dry mouth"}, headers=token("dm", "data_manager"))
    assert response.status_code == 200
    _documented(client, response)
    first = response.get_json()["terms"][0]
    assert first["llt_code"] == "10013781" and first["term"] == "Dry mouth"
    assert first["soc"] == "Gastrointestinal disorders"
    assert sorted(first["grades"]) == ["1", "2", "3"]
    assert client.get(URL, headers=token("nurse", "site_staff")).get_json() == {"terms": []}


def test_without_a_token_401(client):
    response = client.get(URL, query_string={"q": "dry"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _documented(client, response)


@pytest.mark.parametrize("role", [None, "sponsor"])
def test_without_a_role_that_views_forms_403(client, token, role):
    response = client.get(URL, query_string={"q": "dry"}, headers=token("someone", role))
    assert response.status_code == 403
    _documented(client, response)
