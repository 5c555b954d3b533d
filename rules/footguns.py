"""Conditions YAML reads differently from what the admin typed, found before they run.

An unquoted `` #`` on a one-line condition starts a comment (``when: a >= 9 #AND b`` is read
as ``a >= 9``), and a leading ``!`` is a YAML tag (``when: !opted_in`` is not ``NOT``). Neither
is a syntax error, so without this check half a rule would disappear silently. Inside a block
string (``when: >-`` with the text indented below) or quotes, both are plain text.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from canonical.yaml import YamlDocument

#: Keys whose one-line values YAML can silently cut short (``#``) or turn into a tag (``!``).
TEXT_KEYS: dict[str, tuple[str, ...]] = {
    "opt_out": ("when", "reason", "null_reason"),
    "eligibility": ("when", "reason", "null_reason"),
    "suspension": ("when", "reason", "null_reason"),
    "score": ("value",),
}
_COMMENT = re.compile(r"\s#")
_BLOCK_HINT = "write it as a block string (key: >- with the text indented below) or in quotes"


def yaml_footguns(doc: YamlDocument) -> list[tuple[tuple[Any, ...], str]]:
    """Every such value of the policy, as ``(key path, what is wrong)``."""
    data = doc.data
    found: list[tuple[tuple[Any, ...], str]] = []
    for section, keys in TEXT_KEYS.items():
        items = data.get(section) if isinstance(data, dict) else None
        base: tuple[Any, ...] = (section,)
        if section == "score":
            items = items.get("terms") if isinstance(items, dict) else None
            base = ("score", "terms")
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            for key in keys:
                if key not in item:
                    continue
                value = item[key]
                if isinstance(value, TaggedScalar):
                    tag = str(getattr(value.tag, "value", value.tag))
                    found.append(
                        (
                            (*base, i, key),
                            f"starts with '{tag}', which YAML reads as a tag, not as text; for a "
                            f"negation write NOT, and {_BLOCK_HINT}",
                        )
                    )
                elif isinstance(value, str) and _comment_after(doc, item, key):
                    found.append(
                        (
                            (*base, i, key),
                            f"an unquoted ' #' starts a YAML comment, so only '{value}' was "
                            f"read; {_BLOCK_HINT}",
                        )
                    )
    return found


def _comment_after(doc: YamlDocument, node: Any, key: str) -> bool:
    """Whether the one-line (plain) value of ``key`` in ``node`` is followed by a comment."""
    lc = getattr(node, "lc", None)
    if lc is None or isinstance(node[key], FoldedScalarString | LiteralScalarString):
        return False
    try:
        key_col = lc.key(key)[1]
        line, col = lc.value(key)
    except (KeyError, TypeError):
        return False
    lines = doc.lines
    if line >= len(lines) or lines[line][col : col + 1] in ("'", '"'):
        return False
    if _COMMENT.search(lines[line][col:]):
        return True
    # a plain scalar may go on over more-indented lines; a comment there ends it too
    for text in lines[line + 1 :]:
        if not text.strip():
            continue
        if len(text) - len(text.lstrip()) <= key_col:
            return False
        if text.lstrip().startswith("#") or _COMMENT.search(text):
            return True
    return False
