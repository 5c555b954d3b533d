"""The Salesforce side's route table: method + path pattern -> handler, 404 and 405."""

from __future__ import annotations

import requests

from sandbox import Sandbox
from sandbox.http import Request, Response
from sandbox.salesforce.routes import Call, Handler, Route, RouteTable
from tests.sandbox.conftest import client_credentials_token


def _answer(name: str) -> Handler:
    def handler(call: Call) -> Response:
        return Response(200, name.encode())

    return handler


TABLE = RouteTable(
    [
        Route("GET", "/sobjects/{object}/describe", _answer("describe")),
        Route("GET", "/sobjects/{object}/{id}", _answer("get")),
        Route("PATCH", "/sobjects/{object}/{id}", _answer("patch")),
        Route("GET", "/limits", _answer("limits")),
    ]
)


def _name(method: str, path: str) -> str | None:
    match = TABLE.resolve(method, path)
    if match.handler is None:
        return None
    call = Call(Request(method, path, {}, {}, b""), "62.0", match.params)
    return match.handler(call).body.decode()


def test_first_route_matching_path_and_method_wins() -> None:
    assert _name("GET", "/sobjects/Account/describe") == "describe"
    assert _name("GET", "/sobjects/Account/001000000000001AAA") == "get"
    # the literal route takes GET only: other methods fall to the parameter route
    assert _name("PATCH", "/sobjects/Account/describe") == "patch"


def test_parameters_are_captured_and_empty_segments_ignored() -> None:
    match = TABLE.resolve("GET", "//sobjects/Contact/003000000000001AAA/")
    assert match.params == {"object": "Contact", "id": "003000000000001AAA"}


def test_known_path_other_method_lists_allowed_unknown_path_lists_none() -> None:
    assert TABLE.resolve("DELETE", "/limits").allowed == ("GET",)
    assert TABLE.resolve("DELETE", "/sobjects/Account/x").allowed == ("GET", "PATCH")
    nowhere = TABLE.resolve("GET", "/limits/extra")
    assert nowhere.handler is None
    assert nowhere.allowed == ()


def test_http_unknown_path_is_404_other_method_is_405(
    sb: Sandbox, session: requests.Session
) -> None:
    token = client_credentials_token(sb, session)
    base = f"{sb.salesforce_url}/services/data/v{sb.api_version}"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    missing = session.get(f"{base}/nothing/here", headers=headers, timeout=10)
    assert missing.status_code == 404
    assert missing.json()[0]["errorCode"] == "NOT_FOUND"
    wrong = session.put(f"{base}/limits", headers=headers, timeout=10)
    assert wrong.status_code == 405
    assert wrong.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["Sforce-Limit-Info"].startswith("api-usage=")  # counted like any call
    # outside the API, only the token endpoint (POST) and the version list (GET) exist
    assert session.get(f"{sb.salesforce_url}/services/oauth2/token", timeout=10).status_code == 404
    versions = session.get(f"{sb.salesforce_url}/services/data/", timeout=10)
    assert sb.api_version in [v["version"] for v in versions.json()]
