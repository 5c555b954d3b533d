"""Benchmark: the cost of redacting every log line.

Run: ``python -m bench.ops_logging [lines]`` (default 50,000). Logs realistic lines (a third
carry a token, a password or contact emails; the rest are ordinary progress lines) through the
service's JSON handler with its redaction filter, and through a naive baseline in the same
process: a plain ``logging.StreamHandler`` with the default formatter, which redacts nothing.
Prints lines per CPU-second for both, the ratio, and peak RSS. No API calls (pure CPU).
"""

from __future__ import annotations

import io
import logging
import sys
import time

from sync_service.ops.logs import build_handler, register_secret
from sync_service.ops.memory import rss_mib


def _lines(n: int) -> list[tuple[str, tuple[object, ...]]]:
    out: list[tuple[str, tuple[object, ...]]] = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            out.append(("token refreshed: %r", ({"access_token": f"00D5g000000AbCd!AQ{i:08d}x"},)))
        elif kind == 1:
            out.append(
                ("contact %s changed status to %s", (f"user{i}@example{i % 97}.com", "Eligible"))
            )
        else:
            out.append(("synced %d records of stream=%s in %.2f s", (2000, "Contact", 1.5)))
    return out


def _run(handler: logging.Handler, lines: list[tuple[str, tuple[object, ...]]]) -> float:
    logger = logging.getLogger("bench.ops_logging")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    started = time.process_time()
    for msg, args in lines:
        logger.info(msg, *args)
    return time.process_time() - started


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    register_secret("a-registered-client-secret")
    lines = _lines(n)
    sink = io.StringIO()
    redacted = _run(build_handler(sink, "json"), lines)
    out = sink.getvalue()
    assert "@example" not in out
    assert "!AQ" not in out
    plain_handler = logging.StreamHandler(io.StringIO())
    naive = _run(plain_handler, lines)
    rss = rss_mib()
    print(f"lines: {n:,} (1/6 with a token, 1/6 with an email)")
    print(f"redacting JSON handler: {n / redacted:,.0f} lines/s")
    print(f"naive plain handler:    {n / naive:,.0f} lines/s (redacts nothing)")
    print(f"ratio: redaction costs {redacted / naive:.1f}x the CPU of a plain line")
    print("API calls: 0")
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
