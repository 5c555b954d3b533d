"""Benchmark: how fast the sandbox seeds and serves a large org (it must never be the bottleneck).

Run: ``python -m bench.sandbox_serving [--accounts 200000]``. Seeds ``Sandbox(accounts=N)``
(about 5 N contacts), then a client in a child process (its own GIL, as a real sync has) reads
every Contact with the columns a sync selects:

* ``rest``: ``queryAll`` pages of 2,000 via plain requests + ``json.loads``;
* ``bulk``: a Bulk API 2.0 query job, CSV pages of 50,000 records via ``Sforce-Locator``;

once with pages rendered in SQL (what the sandbox does) and once rendered record by record in
Python (the naive baseline), and prints records/s, the ratio, API calls and the server's peak
RSS. Seeding is timed too (a second run of the same parameters copies the cached seed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from sync_service.ops.memory import rss_mib

SOQL = (
    "SELECT Id, AccountId, Email, FirstName, LastName, Title, Reference_Opt_In__c, "
    "Reference_Opt_Out__c, Advocate_Status__c, Advocate_Override__c, SystemModstamp "
    "FROM Contact WHERE SystemModstamp >= 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
)


def client(url: str, token: str, ca: str, mode: str, version: str) -> None:
    """Read every record in ``mode``; print JSON {records, seconds, calls}."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = ca
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{url}/services/data/v{version}"
    start = time.perf_counter()
    records = calls = 0
    if mode == "rest":
        resp = session.get(f"{base}/queryAll", params={"q": SOQL}, headers=headers, timeout=600)
        calls += 1
        while True:
            body = json.loads(resp.content)
            records += len(body["records"])
            if body["done"]:
                break
            resp = session.get(url + body["nextRecordsUrl"], headers=headers, timeout=600)
            calls += 1
    else:
        job = session.post(
            f"{base}/jobs/query",
            json={"operation": "queryAll", "query": SOQL},
            headers=headers,
            timeout=600,
        ).json()
        calls += 1
        while (
            session.get(f"{base}/jobs/query/{job['id']}", headers=headers, timeout=60).json()[
                "state"
            ]
            != "JobComplete"
        ):
            calls += 1
        calls += 1
        locator = ""
        while True:
            params = {"maxRecords": "50000"}
            if locator:
                params["locator"] = locator
            resp = session.get(
                f"{base}/jobs/query/{job['id']}/results",
                params=params,
                headers=headers,
                timeout=600,
            )
            calls += 1
            records += int(resp.headers["Sforce-NumberOfRecords"])
            locator = resp.headers["Sforce-Locator"]
            if locator == "null":
                break
    print(json.dumps({"records": records, "seconds": time.perf_counter() - start, "calls": calls}))


def _run_client(sb: object, token: str, mode: str) -> dict[str, float]:
    from sandbox import Sandbox

    assert isinstance(sb, Sandbox)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sandbox_serving",
            "--client",
            sb.salesforce_url,
            token,
            sb.ca_bundle,
            mode,
            sb.api_version,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--client", nargs=5, metavar=("URL", "TOKEN", "CA", "MODE", "VERSION"))
    args = parser.parse_args()
    if args.client:
        client(*args.client)
        return

    from sandbox import Sandbox, results

    start = time.perf_counter()
    with Sandbox(accounts=args.accounts, seed=args.seed) as sb:
        seeded = time.perf_counter() - start
        counts = ", ".join(f"{k} {v:,}" for k, v in sb.seed_counts.items())
        print(f"seed+start: {seeded:.1f} s ({counts})")
        token = sb.credentials["access_token"]
        rows = []
        for mode in ("rest", "bulk"):
            figures = {}
            for render_in_sql in (True, False):
                results.RENDER_IN_SQL = render_in_sql
                before = sb.api_calls["salesforce"]
                got = _run_client(sb, token, mode)
                got["server_calls"] = sb.api_calls["salesforce"] - before
                figures[render_in_sql] = got
            results.RENDER_IN_SQL = True
            fast, naive = figures[True], figures[False]
            fast_rps = fast["records"] / fast["seconds"]
            naive_rps = naive["records"] / naive["seconds"]
            rows.append(
                f"| {mode} | {fast['records']:,.0f} | {fast_rps:,.0f} | {naive_rps:,.0f} | "
                f"{fast_rps / naive_rps:.1f}x | {fast['calls']:.0f} |"
            )
        rss = rss_mib()
        print("| mode | records | records/s | naive records/s | ratio | API calls |")
        print("|---|---|---|---|---|---|")
        print("\n".join(rows))
        print(f"server process peak RSS: {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
