"""One module per CLI command: ``HELP``, ``add_arguments(parser)`` and ``run(args, ctx)``.

``run`` returns the exit code: 0 ok, 1 run failed, 2 bad input or config.
"""

from __future__ import annotations

#: Command name -> module under ``sync_service.commands``. Order is the help's order.
COMMANDS: dict[str, str] = {
    "db": "db",
    "validate": "validate",
    "sync": "sync",
    "evaluate": "evaluate",
    "writeback": "writeback",
    "run-once": "run_once",
    "serve": "serve",
    "status": "status",
    "explain": "explain",
    "check": "check",
    "match": "match",
    "api-token": "api_token",
    "asks": "asks",
    "sandbox": "sandbox",
    "demo": "demo",
    "report": "report",
    "forget": "forget",
    "export-subject": "export_subject",
}
