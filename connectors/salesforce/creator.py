"""Creating records exactly once: look up the external keys, then insert what is missing.

Each new record carries its own key in an external-id field (``Guard_Ask_Id__c`` for the asks
the service logs). Before inserting, one SOQL query asks which keys the org already holds: a
record created by an earlier call whose answer never reached us (a crash, a timeout after the
commit) is found there and reported as created, with its id, instead of being made twice. The
rest go as ``POST composite/sobjects`` with ``allOrNone=false``, at most 200 a request; the
answer holds one ``{id, success, errors}`` per record, in request order.

The caller (the writeback's create path) runs under the writeback's job lock, so no two
callers insert the same key at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from simple_salesforce.api import Salesforce

from canonical.errors import ConnectorError
from connectors.base import RecordChange, WriteResult
from connectors.salesforce import soql
from connectors.salesforce.writer import (
    COLLECTION_SIZE,
    _chunks,
    _collection_result,
    _failure,
    _json_value,
)

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector


def _existing(
    connector: SalesforceConnector, object_name: str, field: str, keys: Sequence[str]
) -> dict[str, str]:
    """External key -> Salesforce id of the records the org already holds."""
    query = soql.keys_query(object_name, field, keys)

    def run(sf: Salesforce) -> Any:
        return sf.query_all(query)

    answer = connector.call(run, what=f"find {len(keys)} {object_name} by {field}")
    records = answer.get("records", []) if isinstance(answer, dict) else []
    return {str(r[field]): str(r["Id"]) for r in records if r.get(field)}


def create_records(
    connector: SalesforceConnector,
    object_name: str,
    records: Sequence[RecordChange],
    external_id_field: str,
) -> list[WriteResult]:
    """Create ``records`` (keyed by ``external_id_field``) once each; results in input order."""
    if not records:
        return []
    soql.object_name(object_name)
    soql.field_name(external_id_field)
    results: dict[str, WriteResult] = {}
    for chunk in _chunks(records, COLLECTION_SIZE):
        try:
            found = _existing(
                connector, object_name, external_id_field, [r.record_id for r in chunk]
            )
        except ConnectorError as err:
            for r in chunk:
                results[r.record_id] = _failure(r, err)
            continue
        todo = []
        for r in chunk:
            if r.record_id in found:
                results[r.record_id] = WriteResult(r.record_id, True, crm_id=found[r.record_id])
            else:
                todo.append(r)
        if not todo:
            continue
        body = {
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": object_name},
                    **{k: _json_value(v) for k, v in r.fields.items()},
                    external_id_field: r.record_id,
                }
                for r in todo
            ],
        }

        def post(sf: Salesforce, body: dict[str, Any] = body) -> Any:
            return sf.restful("composite/sobjects", method="POST", json=body)

        try:
            answer = connector.call(post, what=f"create {len(todo)} {object_name}")
        except ConnectorError as err:
            for r in todo:
                results[r.record_id] = _failure(r, err)
            continue
        answers = answer if isinstance(answer, list) else []
        for i, r in enumerate(todo):
            item = answers[i] if i < len(answers) else None
            result = _collection_result(r, item)
            if result.success and isinstance(item, dict):
                result = WriteResult(r.record_id, True, crm_id=str(item.get("id") or ""))
            results[r.record_id] = result
    return [results[r.record_id] for r in records]
