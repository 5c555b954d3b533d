"""Identifiers that look like the real ones: Salesforce 18-character ids and Gainsight GSIDs."""

from __future__ import annotations

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

#: The pod part of every sandbox id (real ids carry the instance's pod here).
POD = "5g"


def checksum_suffix(id15: str) -> str:
    """The three-character case-safe suffix Salesforce appends to a 15-character id."""
    out = []
    for i in range(3):
        bits = 0
        for j, ch in enumerate(id15[i * 5 : i * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        out.append(_SUFFIX[bits])
    return "".join(out)


_PAIRS = [a + b for a in _B62 for b in _B62]
_PAIR_BITS = [(a.isupper()) | (b.isupper()) << 1 for a in _B62 for b in _B62]
_HEADS: dict[str, tuple[str, str]] = {}


def sf_id(prefix: str, n: int) -> str:
    """The ``n``-th 18-character id of the object with key prefix ``prefix`` (n < 62**5).

    Seeding makes millions of these, so the checksum of the constant head is cached and the
    counter's five characters are built from two-character tables.
    """
    head = _HEADS.get(prefix)
    if head is None:
        body = prefix + POD + "00000"
        sfx = checksum_suffix(body + "00000")
        head = _HEADS[prefix] = (body, sfx[:2])
    hi, lo = divmod(n, 3844)
    c0, mid = divmod(hi, 3844)
    first = _B62[c0 % 62]
    bits = first.isupper() | _PAIR_BITS[mid] << 1 | _PAIR_BITS[lo] << 3
    return head[0] + first + _PAIRS[mid] + _PAIRS[lo] + head[1] + _SUFFIX[bits]


def to18(value: str) -> str:
    """An id as 18 characters (15-character ids get their suffix; others are returned as is)."""
    if len(value) == 15 and value.isalnum():
        return value + checksum_suffix(value)
    return value


def is_sf_id(value: str) -> bool:
    """True for a well-formed 18-character id whose suffix matches."""
    return len(value) == 18 and value.isalnum() and checksum_suffix(value[:15]) == value[15:]


def gsid(prefix: str, n: int) -> str:
    """A 36-character Gainsight id (``1P0`` + object letter + a counter), like the real ones."""
    return f"1P0{prefix}{n:032d}"
