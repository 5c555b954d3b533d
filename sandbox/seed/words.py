"""The word lists the seed draws from, read from ``sandbox/data/seed_words.json``.

The file is package data, read through ``importlib.resources`` so that an installed (not only
an editable) sandbox finds it. It holds:

- plain lists, picked uniformly: ``first_names``, ``last_names``, the three parts of a company
  name (``company_name_first``, ``company_name_second``, ``company_suffixes``), contact
  ``titles`` and ``case_subjects``;
- ``countries``: per region, each country with a weight;
- ``weights``: one table per picked value (industry, region, segment, account type, renewal
  risk, case priority and status, ask type, team and status, Gainsight stage, programme and
  membership status), each value with a weight.

Weighted tables are expanded so that a value appears ``weight`` times, in the file's order, and
picked with ``t[int(r() * len(t))]`` (see ``sandbox.seed``): editing a list or a weight changes
every seeded org, so bump ``SEED_VERSION`` with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

DATA_FILE = "seed_words.json"

_LISTS = (
    "first_names",
    "last_names",
    "company_name_first",
    "company_name_second",
    "company_suffixes",
    "titles",
    "case_subjects",
)


def weighted(pairs: dict[str, int]) -> tuple[str, ...]:
    """A table where each value appears ``weight`` times; pick with ``t[int(r() * len(t))]``."""
    out: list[str] = []
    for value, weight in pairs.items():
        out.extend([value] * weight)
    return tuple(out)


@dataclass(frozen=True)
class Words:
    """Every list the seed picks from; weighted tables already expanded."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    company_name_first: tuple[str, ...]
    company_name_second: tuple[str, ...]
    company_suffixes: tuple[str, ...]
    titles: tuple[str, ...]
    case_subjects: tuple[str, ...]
    countries: dict[str, tuple[str, ...]]
    industry: tuple[str, ...]
    region: tuple[str, ...]
    segment: tuple[str, ...]
    account_type: tuple[str, ...]
    renewal_risk: tuple[str, ...]
    case_priority: tuple[str, ...]
    open_case_status: tuple[str, ...]
    ask_type: tuple[str, ...]
    ask_team: tuple[str, ...]
    recent_ask_status: tuple[str, ...]
    past_ask_status: tuple[str, ...]
    company_stage: tuple[str, ...]
    program: tuple[str, ...]
    membership_status: tuple[str, ...]


_WEIGHTED = tuple(f.name for f in fields(Words) if f.name not in (*_LISTS, "countries"))


def check_words(data: Any) -> None:
    """Fail with every problem of the file at once (it is package data: a bad edit is a bug)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        problems.append("the top level must be an object")
        data = {}
    for key in _LISTS:
        value = data.get(key)
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            problems.append(f"{key}: a non-empty list of strings is required")
    tables: dict[str, Any] = dict(data.get("weights") or {})
    unknown = sorted(set(tables) - set(_WEIGHTED))
    if unknown:
        problems.append(f"weights: unknown tables {unknown}")
    regions = tables.get("region")
    countries = data.get("countries")
    if (
        not isinstance(countries, dict)
        or not isinstance(regions, dict)
        or set(countries) != set(regions)
    ):
        problems.append("countries: one table per region of weights.region is required")
    else:
        tables.update({f"countries.{name}": t for name, t in countries.items()})
    for name in (*_WEIGHTED, *(k for k in tables if k.startswith("countries."))):
        table = tables.get(name)
        if not (
            isinstance(table, dict)
            and table
            and all(isinstance(w, int) and w > 0 for w in table.values())
        ):
            problems.append(f"{name}: a non-empty object of positive integer weights is required")
    if problems:
        msg = f"sandbox/data/{DATA_FILE} is invalid: " + "; ".join(problems)
        raise ValueError(msg)


@cache
def load_words() -> Words:
    """The seed's word lists (read once per process)."""
    text = (resources.files("sandbox") / "data" / DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    check_words(data)
    values: dict[str, Any] = {key: tuple(data[key]) for key in _LISTS}
    values.update({name: weighted(data["weights"][name]) for name in _WEIGHTED})
    values["countries"] = {region: weighted(t) for region, t in data["countries"].items()}
    return Words(**values)
