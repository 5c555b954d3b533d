"""Shared fakes of the Salesforce connector tests: URLs, describe bodies, response helpers."""

from __future__ import annotations

import json
from typing import Any

import responses

LOGIN = "https://login.example.test"
TOKEN_URL = f"{LOGIN}/services/oauth2/token"
INSTANCE = "https://acme.my.example.test"
API = f"{INSTANCE}/services/data/v62.0"

CONTACT_FIELDS: list[dict[str, Any]] = [
    {"name": "Id", "type": "id"},
    {"name": "IsDeleted", "type": "boolean"},
    {"name": "MasterRecordId", "type": "reference", "referenceTo": ["Contact"]},
    {
        "name": "AccountId",
        "type": "reference",
        "referenceTo": ["Account"],
        "relationshipName": "Account",
    },
    {"name": "Email", "type": "email"},
    {"name": "LastName", "type": "string"},
    {"name": "Reference_Opt_In__c", "type": "boolean", "updateable": True},
    {"name": "Advocate_Score__c", "type": "double", "updateable": True},
    {"name": "Asks_Count__c", "type": "int", "calculated": True},
    {
        "name": "Health__c",
        "type": "percent",
        "calculated": True,
        "calculatedFormula": "Account.Health__c",
    },
    {
        "name": "Advocate_Status__c",
        "type": "picklist",
        "updateable": True,
        "restrictedPicklist": True,
        "picklistValues": [
            {"value": "Eligible", "active": True},
            {"value": "Old", "active": False},
        ],
    },
    {"name": "SystemModstamp", "type": "datetime"},
]


def no_sleep(_seconds: float) -> None:
    """A connector's ``sleep`` in tests that do not look at the waits."""


def token_response(rsps: responses.RequestsMock, token: str = "tok-1", **kw: Any) -> Any:
    return rsps.post(
        TOKEN_URL,
        json={"access_token": token, "instance_url": INSTANCE, "token_type": "Bearer"},
        **kw,
    )


def bearer(token: str) -> Any:
    return responses.matchers.header_matcher({"Authorization": f"Bearer {token}"})


def describe_response(
    rsps: responses.RequestsMock,
    obj: str = "Contact",
    fields: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> Any:
    return rsps.get(
        f"{API}/sobjects/{obj}/describe/",
        json={
            "name": obj,
            "queryable": True,
            "fields": fields if fields is not None else CONTACT_FIELDS,
        },
        **kw,
    )


def sf_error(code: str, message: str) -> str:
    return json.dumps([{"errorCode": code, "message": message, "fields": []}])
