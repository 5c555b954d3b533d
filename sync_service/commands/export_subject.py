"""``sync-service export-subject``: what the store holds about one person, as JSON.

For a subject access request (GDPR art. 15, CCPA right to know). The output is personal data:
``--output`` writes it to a file readable by its owner only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from canonical.errors import InputError
from sync_service.commands.forget import add_subject_arguments
from sync_service.context import AppContext
from sync_service.ops.runs import utcnow
from sync_service.privacy.export import export_subject

HELP = "print everything the store holds about one person as JSON (subject access request)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    add_subject_arguments(parser)
    parser.add_argument(
        "--output", metavar="FILE", help="write to FILE (mode 0600) instead of standard output"
    )


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Print (or write) the export; exit 0, or 2 for a malformed id or address."""
    data = export_subject(
        ctx.engine, ctx.privacy_key, contact=args.contact, email=args.email, now=utcnow()
    )
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if not args.output:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        msg = f"cannot write '{path}' ({exc.strerror}); choose another --output"
        raise InputError(msg) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    counts = ", ".join(f"{t} {n}" for t, n in sorted(data["counts"].items()) if n)
    print(f"wrote {path}: {counts or 'nothing held'}")
    return 0
