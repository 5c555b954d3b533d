"""Benchmark: ``EntityMapping.to_row`` on a Salesforce contact (the shipped mapping).

Run: ``python -m bench.mapping_to_row [rows]``. Prints rows per CPU-second (process time, so
other load on the machine does not skew it) for the compiled ``to_row`` and for a naive
baseline in the same process (per row: look each field's type up, dispatch on the type name,
parse timestamps with ``strptime``), their ratio, and peak RSS.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from canonical.model import CANONICAL_FIELDS, Entity
from sync_service.mapping import load_mappings
from sync_service.ops.memory import rss_mib

MAPPING = Path(__file__).resolve().parents[1] / "mappings"


def records(n: int) -> list[dict[str, Any]]:
    """``n`` contacts as the REST API returns them (writeback fields included)."""
    return [
        {
            "Id": f"003{i:015d}",
            "SystemModstamp": "2026-11-20T10:15:30.000+0000",
            "AccountId": f"001{i // 5:015d}",
            "Email": f"Person.{i}@Example.com",
            "FirstName": "Ada",
            "LastName": f"Lovelace {i}",
            "Title": "VP Engineering",
            "Reference_Opt_In__c": i % 3 == 0,
            "Advocate_Status__c": "Eligible",
            "Advocate_Eligible__c": True,
            "Advocate_Score__c": 71.0,
            "Advocate_Reason__c": None,
            "Advocate_Next_Available__c": "2026-12-01",
            "Advocate_Override__c": False,
        }
        for i in range(n)
    ]


def naive_to_row(raw: dict[str, Any], fields: list[tuple[str, str]]) -> dict[str, Any]:
    """The straightforward version: interpret the mapping for every row."""
    row: dict[str, Any] = {"id": raw["Id"]}
    types = CANONICAL_FIELDS[Entity.CONTACT]
    for crm, name in fields:
        value = raw.get(crm)
        ftype = types[name]
        if value is None or value == "":
            row[name] = None
        elif ftype == "string":
            row[name] = str(value).strip().lower() if name == "email" else str(value)
        elif ftype == "boolean":
            row[name] = value if isinstance(value, bool) else str(value).lower() == "true"
        elif ftype == "date":
            row[name] = date.fromisoformat(str(value)[:10])
        elif ftype == "datetime":
            row[name] = datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)
        else:
            row[name] = value
    stamp = datetime.strptime(raw["SystemModstamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    row["source_updated_at"] = stamp.astimezone(UTC)
    row["extra"] = {"_crm": {k: raw.get(k) for k in raw if k.startswith("Advocate_")}}
    return row


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    source = load_mappings(MAPPING).salesforce
    assert source is not None
    contacts = source.entities[Entity.CONTACT]
    data = records(n)
    fields = [(f.crm_field, f.name) for f in contacts.fields]

    to_row = contacts.to_row
    start = time.process_time()
    for raw in data:
        to_row(raw)
    fast = n / (time.process_time() - start)

    start = time.process_time()
    for raw in data:
        naive_to_row(raw, fields)
    naive = n / (time.process_time() - start)

    peak_mib = rss_mib()
    read_back = len(contacts.crm_fields)
    print(f"fields mapped: {len(contacts.fields)} (+ id, timestamp, {read_back} read back)")
    print(f"to_row:  {fast:,.0f} rows/s")
    print(f"naive:   {naive:,.0f} rows/s")
    print(f"ratio:   {fast / naive:.2f}x")
    print("API calls: 0 (pure CPU)")
    print(f"peak RSS: {peak_mib:,.0f} MiB ({n:,} records held in memory for timing)")


if __name__ == "__main__":
    main()
