"""The matching rules (``config/matching.yaml``): model, loading and validation with ``file:line``.

Validated like the policy: every problem at once, one line each, naming the file and line of
the offending key, with the allowed names::

    config/matching.yaml:16:3: terms.industy: unknown account field; did you mean 'industry'?

A term names an account field compared between the deal's account and the advocate's: a
canonical account column (industry, region, segment, account_type), ``size_band`` (the band of
``size.field`` cut at ``size.bounds``) or an account field the admin mapped as ``extra`` in
``mappings/``. Which names exist depends on the mappings, so they are passed in.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canonical.errors import MatchingError
from canonical.model import FieldType
from canonical.yaml import allowed_keys, did_you_mean, parse_yaml, plain, read_text

_Strict = ConfigDict(extra="forbid")

#: Canonical account columns a term may compare (text columns that describe the customer).
ACCOUNT_COLUMNS: tuple[str, ...] = ("industry", "region", "segment", "account_type")
#: Numeric canonical account columns ``size.field`` may name.
NUMERIC_ACCOUNT_COLUMNS: tuple[str, ...] = ("health_score", "nps_score")
SIZE_BAND = "size_band"


class SizeModel(BaseModel):
    """How an account's size band is cut."""

    model_config = _Strict

    field: str = Field(min_length=1)
    bounds: list[float] = Field(min_length=1)


class OpportunityFilterModel(BaseModel):
    """Which open deals get suggestions."""

    model_config = _Strict

    min_amount: float = Field(0, ge=0)
    stages: list[str] = Field(default_factory=list)
    exclude_stages: list[str] = Field(default_factory=list)


class MatchingModel(BaseModel):
    """The file as written."""

    model_config = _Strict

    version: int = 1
    top_n: int = Field(3, ge=1, le=10)
    ask_type: str = Field("Reference Call", min_length=1)
    terms: dict[str, float] = Field(min_length=1)
    size: SizeModel | None = None
    opportunities: OpportunityFilterModel = Field(default_factory=OpportunityFilterModel)
    load_spreading: float = Field(0.5, ge=0, le=10)


@dataclass(frozen=True)
class MatchingRules:
    """Validated matching rules.

    Attributes:
        model: the file's values.
        path: the file, for messages.
        hash: SHA-256 of its text (changes the suggestions' version).
        extras: the terms (and size field) read from the account's ``extra``.
        locations: term (or size field) name -> ``file:line:col``, for later checks' messages.
        source_text: the file's text (kept as the last valid rules, see
            :func:`sync_service.match.job.load_rules_or_last_valid`).
    """

    model: MatchingModel
    path: str
    hash: str
    extras: frozenset[str]
    locations: Mapping[str, str] = field(default_factory=dict)
    source_text: str = ""

    def where(self, name: str) -> str:
        """``file:line:col`` of a term or of the size field (the file when unknown)."""
        return self.locations.get(name, self.path)

    @property
    def weights(self) -> dict[str, float]:
        """Term -> weight, in file order."""
        return dict(self.model.terms)

    @property
    def top_n(self) -> int:
        """Suggestions per deal."""
        return self.model.top_n


def load_matching(
    path: str | os.PathLike[str], account_extras: Mapping[str, FieldType]
) -> MatchingRules:
    """Read and validate a matching file.

    Args:
        path: the file.
        account_extras: the account fields mapped as ``extra`` (name -> type) in ``mappings/``.

    Raises:
        MatchingError: listing every problem as ``file:line:col: where: what``.
    """
    p = Path(path)
    text = read_text(
        p,
        MatchingError,
        what="matching file",
        missing_hint="create it (see config/matching.yaml) or set matching_file",
    )
    return parse_matching(text, account_extras, str(p))


def parse_matching(
    text: str, account_extras: Mapping[str, FieldType], path: str = "matching.yaml"
) -> MatchingRules:
    """Validate matching ``text`` (as read from ``path``, named in messages).

    Raises:
        MatchingError: listing every problem as ``file:line:col: where: what``.
    """
    doc = parse_yaml(text, path, MatchingError)
    if not isinstance(doc.data, dict):
        msg = f"{path}:1:1: the matching file must be a mapping with version, terms, ..."
        raise MatchingError(msg)
    problems: list[str] = []
    try:
        model = MatchingModel.model_validate(plain(doc.data))
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            what = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                close = did_you_mean(str(loc[-1]), allowed_keys(MatchingModel, loc[:-1]))
                what = f"unknown key{close or '; check the spelling against config/matching.yaml'}"
            elif err["type"] == "missing":
                what = f"'{loc[-1]}' is required"
                loc = loc[:-1]
            else:
                what = f"{what} (got {err.get('input')!r})"
            label = ".".join(map(str, loc)) or "matching"
            problems.append(f"{doc.where(loc)}: {label}: {what}")
        raise MatchingError(problems[0], problems=problems) from None

    extras: set[str] = set()
    known = [*ACCOUNT_COLUMNS, SIZE_BAND, *sorted(account_extras)]
    for name, weight in model.terms.items():
        where = doc.where(("terms", name))
        if name in account_extras and name not in ACCOUNT_COLUMNS:
            extras.add(name)
        elif name not in ACCOUNT_COLUMNS and name != SIZE_BAND:
            close = did_you_mean(name, known, f"; one of {', '.join(known)}")
            problems.append(f"{where}: terms.{name}: unknown account field{close}")
        if weight <= 0:
            problems.append(f"{where}: terms.{name}: the weight must be above 0 (got {weight:g})")
    if SIZE_BAND in model.terms and model.size is None:
        problems.append(
            f"{doc.where(('terms', SIZE_BAND))}: terms.size_band: needs a 'size:' section "
            "(field and bounds)"
        )
    if model.size is not None:
        size_field = model.size.field
        numeric = [
            *NUMERIC_ACCOUNT_COLUMNS,
            *sorted(n for n, t in account_extras.items() if t in ("number", "integer")),
        ]
        if size_field in account_extras and size_field in numeric:
            extras.add(size_field)
        elif size_field not in NUMERIC_ACCOUNT_COLUMNS:
            close = did_you_mean(size_field, numeric, f"; one of {', '.join(numeric)}")
            problems.append(
                f"{doc.where(('size', 'field'))}: size.field: '{size_field}' is not a numeric "
                f"account field{close}"
            )
        bounds = model.size.bounds
        if any(b2 <= b1 for b1, b2 in itertools.pairwise(bounds)):
            problems.append(
                f"{doc.where(('size', 'bounds'))}: size.bounds: must increase "
                f"(got {', '.join(f'{b:g}' for b in bounds)})"
            )
    both = sorted(set(model.opportunities.stages) & set(model.opportunities.exclude_stages))
    if both:
        problems.append(
            f"{doc.where(('opportunities', 'exclude_stages'))}: opportunities.exclude_stages: "
            f"{', '.join(both)} also listed in stages; keep each stage in one list"
        )
    if problems:
        raise MatchingError(problems[0], problems=problems)
    locations = {name: doc.where(("terms", name)) for name in model.terms}
    if model.size is not None:
        locations[model.size.field] = doc.where(("size", "field"))
    return MatchingRules(
        model=model,
        path=path,
        hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        extras=frozenset(extras),
        locations=locations,
        source_text=text,
    )


def term_fields(rules: MatchingRules) -> list[str]:
    """The account fields the terms read (``size_band`` becomes ``size.field``)."""
    out: list[str] = []
    for name in rules.model.terms:
        read = rules.model.size.field if name == SIZE_BAND and rules.model.size else name
        if read not in out:
            out.append(read)
    return out


def describe(rules: MatchingRules) -> str:
    """A short summary for ``validate``'s OK line."""
    return f"matching (top {rules.top_n}, {len(rules.model.terms)} terms)"
