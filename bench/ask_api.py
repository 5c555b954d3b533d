"""Benchmark: the Ask API over HTTP on a store of N contacts (checks/s, p99, asks/s, vs evaluation).

    python -m bench.ask_api [N] [SECONDS]     # default 1,000,000 contacts, 20 s per phase

Seeds a SQLite store with ``bench.rules_eval``'s synthetic org (N contacts, N/10 accounts,
0.5 N asks, NPS, tickets, renewals), evaluates it once (``evaluate_all``: the verdicts the guard
starts from), then serves the API under uvicorn in a child process (the service's own
``ApiServer``) and drives it from this process over loopback with keep-alive connections:

* checks: ``POST /v1/asks/check`` for random contacts (a tenth by email) -> checks/s sustained,
  latency p50/p90/p99/max;
* logged asks: ``POST /v1/asks`` for random contacts (201 or 409) -> asks/s, latency;
* without HTTP, CPU per answer: the guard's check vs the same question through the evaluation
  path (the contact's features computed from the store and the policy evaluated for that one
  contact, what ``explain`` does) -> the ratio.

The server's CPU per request is read from ``/proc`` around each phase, so the capacity of one
core (requests per server CPU-second) is reported beside the rate, which on a shared machine
depends on everyone else's load.

Targets (issue 19): >= 500 checks/s sustained with p99 < 50 ms; >= 100 logged asks/s.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from bench.rules_eval import NOW, build, seed
from rules import load_policy
from sync_service.evaluate.evaluation import evaluate_all
from sync_service.evaluate.explain import explain_entity
from sync_service.store.engine import make_engine

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "config" / "rules.yaml"
CLIENTS = 8


def serve(url: str, port_file: str) -> None:
    """Child process: the API on a free loopback port (written to ``port_file``), forever."""
    from sync_service.api.ratelimit import RateLimiter
    from sync_service.api.server import ApiServer
    from sync_service.api.state import ApiState, PolicyCache
    from sync_service.api.tokens import TokenCache
    from sync_service.evaluate.ask_audit import AuditSink
    from sync_service.evaluate.guard import Guard
    from sync_service.mapping.asks import AskFields
    from sync_service.mapping.loader import load_mappings
    from sync_service.ops.metrics import build_registry

    engine = make_engine(url, pool_size=CLIENTS * 2)
    fields = AskFields.from_mapping(load_mappings(ROOT / "mappings").salesforce)
    snapshot = Path(tempfile.mkdtemp()) / "rules.yaml"
    guard = Guard(engine, PolicyCache(RULES, snapshot), fields, AuditSink(engine), lambda: NOW)
    state = ApiState(
        engine=engine,
        guard=guard,
        tokens=TokenCache(engine),
        limiter=RateLimiter(100_000, 100_000),
        registry=build_registry(engine),
    )
    srv = ApiServer(state, "127.0.0.1", 0).start()
    Path(port_file).write_text(str(srv.port), encoding="utf-8")
    threading.Event().wait()


def _client_loop(
    port: int,
    token: str,
    make_body: Any,
    path: str,
    stop_at: float,
    out: list[tuple[float, int]],
    lock: threading.Lock,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    # As urllib3 (requests) and curl do: without it, a request's small segments wait on the
    # peer's delayed ACK, and every answer takes 40 ms whatever the server does.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    mine: list[tuple[float, int]] = []
    while time.perf_counter() < stop_at:
        body = json.dumps(make_body())
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        mine.append((time.perf_counter() - t0, resp.status))
    conn.close()
    with lock:
        out.extend(mine)


def load(port: int, token: str, make_body: Any, path: str, seconds: float) -> dict[str, Any]:
    """``CLIENTS`` closed-loop clients for ``seconds``; rate and latency distribution."""
    out: list[tuple[float, int]] = []
    lock = threading.Lock()
    start = time.perf_counter()
    stop_at = start + seconds
    threads = [
        threading.Thread(
            target=_client_loop, args=(port, token, make_body, path, stop_at, out, lock)
        )
        for _ in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = sorted(x for x, _ in out)
    codes: dict[int, int] = {}
    for _, code in out:
        codes[code] = codes.get(code, 0) + 1

    def pct(p: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))]

    return {
        "requests": len(out),
        "per_second": round(len(out) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(1000 * lat[-1], 2),
        "mean_ms": round(1000 * statistics.fmean(lat), 2),
        "codes": codes,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Any) -> dict[str, Any]:
    """``run()``'s figures plus the server's CPU per request (independent of other load)."""
    before = cpu_seconds(pid)
    figures: dict[str, Any] = run()
    cpu = cpu_seconds(pid) - before
    figures["server_cpu_ms_per_request"] = round(1000 * cpu / max(1, figures["requests"]), 3)
    figures["capacity_per_server_cpu_second"] = round(figures["requests"] / max(cpu, 1e-9), 1)
    return figures


def in_process(url: str, ids: list[str]) -> dict[str, Any]:
    """CPU per answer without HTTP: the guard's check vs evaluating the contact (explain's path).

    CPU time (``process_time``), not wall time: the machine's other load does not enter it.
    """
    from sync_service.evaluate.ask_audit import AuditSink
    from sync_service.evaluate.guard import AskTarget, Caller, Guard

    engine = make_engine(url)
    policy = load_policy(RULES)
    guard = Guard(engine, lambda: policy, None, AuditSink(engine, interval=3600), lambda: NOW)
    who = Caller("bench", None)
    t0 = time.process_time()
    for cid in ids:
        guard.check(who, AskTarget(cid, "Webinar", "Sales"))
    check_ms = 1000 * (time.process_time() - t0) / len(ids)
    sample = ids[:50]
    t0 = time.process_time()
    for cid in sample:
        explain_entity(engine, policy, cid, NOW)
    evaluate_ms = 1000 * (time.process_time() - t0) / len(sample)
    engine.dispose()
    return {
        "guard_check_cpu_ms": round(check_ms, 3),
        "evaluation_path_cpu_ms": round(evaluate_ms, 3),
        "evaluation_over_guard": round(evaluate_ms / check_ms, 1),
    }


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 1_000_000
    seconds = float(argv[1]) if len(argv) > 1 else 20.0
    work = Path(tempfile.mkdtemp(prefix="bench-ask-"))
    url = f"sqlite:///{work / 'store.db'}"
    t0 = time.perf_counter()
    data = build(n)
    data["contacts"] = data["contacts"].with_columns(
        (pl.col("id").str.to_lowercase() + "@example.com").alias("email")
    )
    seed(url, data)
    seeded = time.perf_counter() - t0
    engine = make_engine(url)
    t0 = time.perf_counter()
    evaluate_all(engine, load_policy(RULES), NOW, None)
    evaluated = time.perf_counter() - t0
    from sync_service.api.tokens import create_token

    _, token = create_token(engine, team=None, name="bench", role="admin", now=datetime.now(UTC))
    engine.dispose()
    ids = data["contacts"]["id"].to_list()
    rng = random.Random(19)

    def check_body() -> dict[str, Any]:
        cid = rng.choice(ids)
        who = {"email": cid.lower() + "@example.com"} if rng.random() < 0.1 else {"contact_id": cid}
        return {**who, "ask_type": rng.choice(["Webinar", "Reference Call"]), "team": "Sales"}

    def ask_body() -> dict[str, Any]:
        return {**check_body(), "requested_by": "bench"}

    port_file = work / "port"
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.ask_api", "--serve", url, str(port_file)],
        cwd=ROOT,
        env={**os.environ, "SYNC_LOG_LEVEL": "WARNING"},
    )
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.1)
        port = int(port_file.read_text())
        load(port, token, check_body, "/v1/asks/check", 2.0)  # warm up
        checks = measured(
            child.pid, lambda: load(port, token, check_body, "/v1/asks/check", seconds)
        )
        asks = measured(child.pid, lambda: load(port, token, ask_body, "/v1/asks", seconds))
    finally:
        child.terminate()
        child.wait(timeout=30)
    cpu = in_process(url, [rng.choice(ids) for _ in range(2000)])
    report = {
        "contacts": n,
        "seed_seconds": round(seeded, 1),
        "evaluate_all_seconds": round(evaluated, 1),
        "clients": CLIENTS,
        "checks": checks,
        "asks": asks,
        "in_process": cpu,
        "targets_met": {
            "checks_per_second>=500": checks["per_second"] >= 500,
            "check_p99<50ms": checks["p99_ms"] < 50,
            "asks_per_second>=100": asks["per_second"] >= 100,
        },
        "load_average": os.getloadavg(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main(sys.argv[1:]))
