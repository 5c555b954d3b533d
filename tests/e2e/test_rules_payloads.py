"""A rules file cannot reach a file, a URL or a table, whatever is written in it.

`validate` and `evaluate` run in a child process under three spies: a TCP listener standing in
for the URL (counts connections made by polars' own HTTP client as well as Python's), a FIFO
standing in for the file (an open for reading from any layer, Rust included, is seen from this
side), and a Python audit hook in the child reporting ``open`` and ``socket.connect`` events.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CANARY = "CANARY-CONTENT-7f3a"

#: Run the CLI in the child with an audit hook that reports file opens and socket connects.
_CHILD = """
import sys
watched = sys.argv.pop(1).split("|")
def hook(event, args):
    if event == "open" and any(w and w in str(args[0]) for w in watched):
        sys.__stderr__.write(f"SPY open {args[0]}\\n")
    elif event == "socket.connect":
        sys.__stderr__.write(f"SPY connect {args[1]}\\n")
sys.addaudithook(hook)
from sync_service.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@dataclass
class Spies:
    """The listener's port, the FIFO's path and what each saw."""

    port: int
    fifo: Path
    connections: list[bytes] = field(default_factory=list)
    fifo_opens: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def spies(tmp_path: Path) -> Iterator[Spies]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    fifo = tmp_path / "data.json"
    os.mkfifo(fifo)
    spy = Spies(port=server.getsockname()[1], fifo=fifo)

    def listen() -> None:
        while not spy.stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    spy.connections.append(conn.recv(200))
                    body = f"a\n{CANARY}\n".encode()
                    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    conn.sendall(head + body)
                except OSError:
                    spy.connections.append(b"")

    def watch_fifo() -> None:
        # Opening a FIFO for writing without blocking succeeds only while someone reads it.
        while not spy.stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.01)
                continue
            spy.fifo_opens += 1
            with contextlib.suppress(OSError):
                os.write(fd, f'{{"a": "{CANARY}"}}\n'.encode())
            os.close(fd)

    threads = [threading.Thread(target=listen), threading.Thread(target=watch_fifo)]
    for t in threads:
        t.start()
    yield spy
    spy.stop.set()
    for t in threads:
        t.join()
    server.close()


def payloads(spy: Spies) -> list[str]:
    url = f"http://127.0.0.1:{spy.port}/data.csv"
    return [
        f"opted_out AND EXISTS (SELECT 1 FROM read_csv('{url}'))",
        f"opted_out AND EXISTS (SELECT 1 FROM read_json('{spy.fifo}'))",
        f"opted_out OR opted_in IN (SELECT a FROM read_ndjson('{spy.fifo}'))",
        f"read_csv('{url}') IS NULL",
        "opted_out AND EXISTS (SELECT 1 FROM read_json('/etc/passwd'))",
        "opted_out AND contacts.email LIKE '%@example.com'",
        "opted_out AND (SELECT COUNT(*) FROM contacts) > 0",
    ]


def run_cli(args: list[str], rules: Path, db_url: str, spy: Spies, cwd: Path) -> tuple[int, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "DATABASE_URL": db_url,
        "SYNC_CONFIG": str(REPO / "config" / "settings.yaml"),
        "SYNC_MAPPINGS_DIR": str(REPO / "mappings"),
        "SYNC_RULES_FILE": str(rules),
        "SYNC_LOG_FORMAT": "text",
        "PYTHONPATH": str(REPO),
    }
    watched = f"{spy.fifo}|/etc/passwd"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, watched, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def rules_with(payloads: list[str], path: Path) -> Path:
    """The shipped policy plus one opt-out rule per payload (every problem is reported at once)."""
    shipped = (REPO / "config" / "rules.yaml").read_text(encoding="utf-8")
    added = "".join(
        f"  - id: payload_{i}\n    when: >-\n      {p}\n    reason: x\n"
        for i, p in enumerate(payloads)
    )
    assert "\nopt_out:\n" in shipped
    path.write_text(shipped.replace("\nopt_out:\n", f"\nopt_out:\n{added}", 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["validate", "evaluate"])
def test_no_payload_in_a_rules_file_reaches_a_file_a_url_or_a_table(
    command: str, spies: Spies, db_url: str, tmp_path: Path
) -> None:
    attacks = payloads(spies)
    rules = rules_with(attacks, tmp_path / "rules.yaml")
    code, output = run_cli([command], rules, db_url, spies, tmp_path)
    assert code == 2, output
    errors = [x for x in output.splitlines() if x.startswith("error:")]
    assert len(errors) == len(attacks), output
    for i, line in enumerate(errors):
        assert f"{rules}:" in line, line
        assert f"(payload_{i}).when:" in line, line
        assert "not allowed" in line, line
    assert "SPY " not in output, output
    assert CANARY not in output
    assert "root:" not in output
    assert "Traceback" not in output
    assert spies.connections == []
    assert spies.fifo_opens == 0
