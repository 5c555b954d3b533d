"""YAML files as a user interface: load them keeping line numbers, and point at a key.

Admins edit these files; an error must name file, line and column. ruamel.yaml keeps the
position of every key and item, which PyYAML's safe loader throws away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from canonical.errors import ConfigError


@dataclass
class YamlDocument:
    """A parsed YAML file that can say where any key path sits in it."""

    path: Path
    data: Any

    def locate(self, keys: Sequence[str | int]) -> tuple[int, int] | None:
        """Return the 1-based (line, column) of the deepest key of ``keys`` that exists."""
        node = self.data
        found: tuple[int, int] | None = (1, 1)
        for key in keys:
            lc = getattr(node, "lc", None)
            if lc is None:
                break
            try:
                if isinstance(key, int) and isinstance(node, list):
                    line, col = lc.item(key)
                    node = node[key]
                elif isinstance(node, dict) and key in node:
                    line, col = lc.key(key)
                    node = node[key]
                else:
                    break
            except (KeyError, IndexError, TypeError):
                break
            found = (line + 1, col + 1)
        return found

    def where(self, keys: Sequence[str | int]) -> str:
        """``file:line:col`` for ``keys`` (the file alone when the position is unknown)."""
        pos = self.locate(keys)
        return f"{self.path}:{pos[0]}:{pos[1]}" if pos else str(self.path)


def load_yaml(path: Path, error_cls: type[ConfigError] = ConfigError) -> YamlDocument:
    """Parse ``path``; a syntax error becomes ``error_cls`` with ``file:line:col``.

    Raises:
        ConfigError: (or ``error_cls``) when the file is missing or is not valid YAML.
    """
    yaml = YAML(typ="rt")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{path}: file not found; create it or point the setting at the right file"
        raise error_cls(msg) from None
    except OSError as exc:
        msg = f"{path}: cannot read file ({exc.strerror})"
        raise error_cls(msg) from None
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        msg = f"{where}: YAML syntax error: {problem}"
        raise error_cls(msg) from None
    except Exception as exc:  # ruamel raises a few non-marked errors on odd input
        msg = f"{path}: YAML syntax error: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        raise error_cls(msg) from None
    return YamlDocument(path=path, data=data)


def plain(data: Any) -> Any:
    """Convert ruamel's commented containers into plain dicts and lists."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data
