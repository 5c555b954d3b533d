"""``serve`` with the fake job runner: tests start it as ``python -m tests.ops.serve_fake serve``.

The runner is injected through ``serve.run``'s parameter; the product has no hook for it.
"""

from __future__ import annotations

import sys

from sync_service.cli import build_parser
from sync_service.commands import serve
from sync_service.context import AppContext
from tests.ops import fake_jobs


def main() -> int:
    args = build_parser().parse_args(sys.argv[1:])
    ctx = AppContext(config_path=args.config)
    try:
        return serve.run(args, ctx, runner=fake_jobs.run_job)
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
