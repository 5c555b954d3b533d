"""List the benchmarks: ``python -m bench`` (each runs as ``python -m bench.<name> [args]``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def main() -> int:
    """Print every benchmark module with the first line of its docstring."""
    here = Path(__file__).parent
    print("benchmarks (run one with: python -m bench.<name> [args]; figures in BENCHMARKS.md)")
    for path in sorted(here.glob("*.py")):
        if path.name.startswith("_"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        print(f"  {path.stem:<22} {doc.splitlines()[0] if doc else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
