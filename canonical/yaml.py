"""YAML files as a user interface: load them keeping positions, point at a key, suggest a name.

Admins edit these files (settings, mappings, rules); an error must name file, line, column and
key, and offer the allowed value. ruamel.yaml keeps the position of every key and item, which
PyYAML's safe loader throws away. One copy of each helper:

* :func:`load_yaml` / :func:`parse_yaml` -- a :class:`YamlDocument`, or a one-line error with
  ``file:line:col`` for a syntax error (:func:`read_text` for a missing file);
* :meth:`YamlDocument.locate` / :meth:`YamlDocument.where` -- where a key path sits;
* :func:`plain` -- ruamel's containers and scalar subclasses as plain Python values;
* :func:`did_you_mean` -- ``; did you mean 'x'?`` for a misspelt name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from canonical.errors import ConfigError


@dataclass
class YamlDocument:
    """A parsed YAML file that can say where any key path sits in it.

    Attributes:
        path: the file, as named in messages.
        data: the round-trip data (ruamel containers that know their positions).
        lines: the text, to find where a block string (``|`` or ``>``) starts.
    """

    path: Path
    data: Any
    lines: list[str] = field(default_factory=list, repr=False)

    def locate(self, keys: Sequence[Any]) -> tuple[int, int] | None:
        """Return the 1-based (line, column) of the deepest key of ``keys`` that exists.

        A key whose value is a block string points at the string's first line (the condition
        itself), not at the ``|`` or ``>`` indicator.
        """
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
                    if isinstance(node[key], FoldedScalarString | LiteralScalarString):
                        line, col = self._block_start(lc.value(key)[0])
                    node = node[key]
                else:
                    break
            except (KeyError, IndexError, TypeError):
                break
            found = (line + 1, col + 1)
        return found

    def where(self, keys: Sequence[Any]) -> str:
        """``file:line:col`` for ``keys`` (the file alone when the position is unknown)."""
        pos = self.locate(keys)
        return f"{self.path}:{pos[0]}:{pos[1]}" if pos else str(self.path)

    def _block_start(self, indicator_line: int) -> tuple[int, int]:
        for ln in range(indicator_line + 1, len(self.lines)):
            text = self.lines[ln]
            if text.strip():
                return ln, len(text) - len(text.lstrip())
        return indicator_line, 0


def parse_yaml(
    text: str, path: str | Path, error_cls: type[ConfigError] = ConfigError
) -> YamlDocument:
    """Parse ``text`` (read from ``path``, named in messages).

    Raises:
        ConfigError: (or ``error_cls``) ``file:line:col: YAML syntax error: ...``.
    """
    try:
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        msg = f"{where}: YAML syntax error: {problem}"
        raise error_cls(msg) from None
    except Exception as exc:  # ruamel raises a few non-marked errors on odd input
        msg = f"{path}: YAML syntax error: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        raise error_cls(msg) from None
    return YamlDocument(path=Path(path), data=data, lines=text.splitlines())


def read_text(
    path: Path,
    error_cls: type[ConfigError] = ConfigError,
    *,
    what: str = "file",
    missing_hint: str = "create it or point the setting at the right file",
) -> str:
    """The text of an admin's file; a missing or unreadable one is a one-line error.

    Args:
        path: the file.
        error_cls: the error to raise.
        what: names the file in messages (``rules file``).
        missing_hint: what to do when the file does not exist.

    Raises:
        ConfigError: (or ``error_cls``) ``<path>: <what> not found; <missing_hint>``.
    """
    try:
        # Line ends kept as written: the rules' digest is taken over this text.
        with path.open(encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        msg = f"{path}: {what} not found; {missing_hint}"
        raise error_cls(msg) from None
    except OSError as exc:
        msg = f"{path}: cannot read the {what} ({exc.strerror})"
        raise error_cls(msg) from None


def load_yaml(path: Path, error_cls: type[ConfigError] = ConfigError) -> YamlDocument:
    """Read and parse ``path``.

    Raises:
        ConfigError: (or ``error_cls``) when the file is missing or is not valid YAML.
    """
    return parse_yaml(read_text(path, error_cls), path, error_cls)


def plain(data: Any, *, text_keys: bool = True) -> Any:
    """Ruamel's commented containers and scalar subclasses as plain dicts, lists and values.

    Args:
        data: what ruamel loaded.
        text_keys: turn every key into text. With False, keys keep their type (so that a
            validator can reject a key that is not text); a complex key (a list) becomes the
            text of a tuple, to stay hashable.
    """
    if isinstance(data, dict):
        return {
            (str(k) if text_keys else _plain_key(k)): plain(v, text_keys=text_keys)
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [plain(v, text_keys=text_keys) for v in data]
    if isinstance(data, bool):
        return bool(data)
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    if isinstance(data, str):
        return str(data)
    return data


def _plain_key(key: Any) -> Any:
    if isinstance(key, list | tuple):
        return str(tuple(key))
    return plain(key, text_keys=False)


def did_you_mean(word: str, choices: Iterable[str], otherwise: str = "") -> str:
    """``; did you mean 'x'?`` for the closest of ``choices``, else ``otherwise``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else otherwise
