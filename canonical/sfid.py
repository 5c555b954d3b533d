"""Salesforce record ids: the 15-character (case-sensitive) and 18-character (case-safe) forms.

Salesforce appends three checksum characters to a 15-character id so that it survives tools
that ignore case; both forms name the same record. Comparisons and hashes of ids use the
18-character form (:func:`to18`).
"""

from __future__ import annotations

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum_suffix(id15: str) -> str:
    """The three-character suffix Salesforce appends to the 15-character id ``id15``."""
    out = []
    for i in range(3):
        bits = 0
        for j, ch in enumerate(id15[i * 5 : i * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        out.append(_SUFFIX[bits])
    return "".join(out)


def to18(value: str) -> str:
    """``value`` as an 18-character id if it is a Salesforce id, else unchanged (trimmed).

    A 15-character id gets its suffix; an 18-character one gets its suffix recomputed from its
    first 15 characters (a suffix whose case a tool changed is still the same record).
    """
    value = value.strip()
    if len(value) in (15, 18) and value.isascii() and value.isalnum():
        head = value[:15]
        return head + checksum_suffix(head)
    return value
