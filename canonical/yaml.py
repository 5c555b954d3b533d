"""YAML files as a user interface: load them keeping positions, point at a key, suggest a name.

Admins edit these files (settings, mappings, rules); an error must name file, line, column and
key, and offer the allowed value. ruamel.yaml keeps the position of every key and item, which
PyYAML's safe loader throws away. One copy of each helper:

* :func:`load_yaml` / :func:`parse_yaml` -- a :class:`YamlDocument`, or a one-line error with
  ``file:line:col`` for a syntax error (:func:`read_text` for a missing file);
* :func:`keep_last_valid` -- a valid file's text saved, for the runs after an invalid edit;
* :meth:`YamlDocument.locate` / :meth:`YamlDocument.where` -- where a key path sits;
* :func:`plain` -- ruamel's containers and scalar subclasses as plain Python values;
* :func:`did_you_mean` -- ``; did you mean 'x'?`` for a misspelt name, and
  :func:`allowed_keys` -- the names a pydantic model allows at a key path, to suggest from.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel
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


#: The largest settings, mapping or rules file read (bytes). The shipped files are a few KiB; a
#: hand-written configuration of a large org stays far below this, and a bigger file is almost
#: certainly not a configuration file (a data export saved over it, a log). Checked before any
#: parsing: a 60 MB mapping kept the parser busy for 13 minutes.
MAX_CONFIG_BYTES = 1024 * 1024


def read_text(
    path: Path,
    error_cls: type[ConfigError] = ConfigError,
    *,
    what: str = "file",
    missing_hint: str = "create it or point the setting at the right file",
) -> str:
    """The text of an admin's file; missing, unreadable, too large or not UTF-8: one line.

    A byte that is not UTF-8 (a Latin-1 ``é`` pasted into a comment) is reported as
    ``file:line:col``, not as a ``UnicodeDecodeError``.

    Args:
        path: the file.
        error_cls: the error to raise.
        what: names the file in messages (``rules file``).
        missing_hint: what to do when the file does not exist.

    Raises:
        ConfigError: (or ``error_cls``) ``<path>: <what> not found; <missing_hint>``, or the
            size limit, or the position of the bad byte.
    """
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            msg = (
                f"{path}: {what} is {size / 1024 / 1024:.1f} MiB, over the "
                f"{MAX_CONFIG_BYTES // 1024 // 1024} MiB limit for a configuration file; "
                "check it is the right file"
            )
            raise error_cls(msg)
        raw = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: {what} not found; {missing_hint}"
        raise error_cls(msg) from None
    except IsADirectoryError:
        msg = f"{path}: is a folder, not a {what}; point the setting at the file"
        raise error_cls(msg) from None
    except OSError as exc:
        msg = f"{path}: cannot read the {what} ({exc.strerror})"
        raise error_cls(msg) from None
    try:
        # Line ends kept as written: the rules' digest is taken over this text.
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        msg = (
            f"{path}:{line}:{col}: byte 0x{raw[exc.start]:02x} is not UTF-8; save the file as "
            "UTF-8 (an accented letter typed in another encoding, e.g. Latin-1)"
        )
        raise error_cls(msg) from None


def keep_last_valid(snapshot: Path, text: str) -> None:
    """Save ``text`` (a file that just validated) as ``snapshot``, unless it already holds it.

    Written to a temporary file and renamed, so a crash never leaves half a snapshot: the
    next run after an invalid edit reads it back and keeps running the last valid version.
    """
    if snapshot.is_file() and snapshot.read_text(encoding="utf-8") == text:
        return
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    tmp = snapshot.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(snapshot)


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


def allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys allowed at ``loc`` inside ``model`` (for 'did you mean')."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        info = next(
            (f for n, f in current.model_fields.items() if (f.alias or n) == part),
            None,
        )
        # A part that is not a field is a dict key or list index: the model stays the same.
        if info is not None:
            current = _model_in(info.annotation)
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items() if not f.exclude]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
