"""Benchmark: reading Gainsight people over HTTPS from the sandbox, vs a naive reader.

Run: ``python -m bench.gainsight_read [ACCOUNTS]`` (default 2,000 accounts: about 10,000
Gainsight people). The connector reads ``Person`` incrementally (5,000 records a call, keyset
rebasing); the baseline is what a first draft does: the API's default page of 100 with a
growing ``offset`` and no order. Every call waits 50 ms in the sandbox (``faults.latency``)
to stand for the network; both readers warm their TLS session first. Prints records/s, API
calls, peak RSS and the ratio.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from connectors.base import StreamSpec
from connectors.gainsight import GainsightConfig, GainsightConnector, build_session
from sandbox import Sandbox
from sync_service.ops.memory import rss_mib

SPEC = StreamSpec(
    name="contacts",
    object_name="Person",
    fields=("Email", "FirstName", "LastName", "SfdcContactId"),
    primary_key="Gsid",
    replication_key="ModifiedDate",
)


def main() -> None:
    n_accounts = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with Sandbox(accounts=n_accounts, seed=3) as sb:
        sb.faults.latency = 0.05
        cfg = GainsightConfig(
            base_url=sb.gainsight_url,
            access_key=sb.credentials["gainsight_access_key"],
            ca_bundle=sb.ca_bundle,
            calls_per_minute=100_000,
        )
        with GainsightConnector(cfg, build_session(cfg)) as gs:
            warm_body = {"select": ["Gsid"], "limit": 1, "offset": 0}
            gs.client.call(
                "POST", "/v1/data/objects/query/Person", what="warm-up", json_body=warm_body
            )
            warm = gs.usage().calls
            t0 = time.perf_counter()
            rows = 0
            for batch in gs.stream(SPEC).read(None, dt.datetime.now(dt.UTC)):
                rows += len(batch.records)
            ours_s = time.perf_counter() - t0
            ours_calls = gs.usage().calls - warm

        session = sb.session()
        session.headers["accesskey"] = sb.credentials["gainsight_access_key"]
        url = f"{sb.gainsight_url}/v1/data/objects/query/Person"
        session.post(url, json={"select": ["Gsid"], "limit": 1}, timeout=60)  # warm-up
        t0 = time.perf_counter()
        naive_rows = naive_calls = offset = 0
        while True:
            body = {"select": ["Gsid", *SPEC.fields], "limit": 100, "offset": offset}
            resp = session.post(url, json=body, timeout=60)
            naive_calls += 1
            page = resp.json()["data"]["records"]
            naive_rows += len(page)
            offset += len(page)
            if len(page) < 100:
                break
        naive_s = time.perf_counter() - t0
    rss = rss_mib()
    print(f"Person records: {rows:,} (sandbox, {n_accounts:,} accounts)")
    print(f"connector: {ours_s:.2f}s, {rows / ours_s:,.0f} records/s, {ours_calls} API calls")
    print(
        f"naive (limit 100, offset): {naive_s:.2f}s, {naive_rows / naive_s:,.0f} records/s, "
        f"{naive_calls} API calls"
    )
    print(
        f"speed-up: {naive_s / ours_s:.1f}x; "
        f"API calls: {naive_calls / max(1, ours_calls):.0f}x fewer"
    )
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
