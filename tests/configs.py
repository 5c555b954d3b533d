"""Settings-file snippets for tests that write their own settings file."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The shipped mappings and rules, by absolute path (a test's settings file sits in a temporary
#: folder, and relative paths are relative to the settings file's folder).
SHIPPED_PATHS = f"mappings_dir: {ROOT / 'mappings'}\nrules_file: {ROOT / 'config' / 'rules.yaml'}\n"
