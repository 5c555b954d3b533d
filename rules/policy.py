"""The policy file (``config/rules.yaml``): model, loading and validation with ``file:line``.

Everything wrong with a policy is reported at once, one line per problem, each naming the file
and line of the offending key, before any run uses it::

    config/rules.yaml:41:11: suspension[0] (open_escalation).when: unknown feature
        'open_escalation'; did you mean 'open_escalations'?

Sections: ``version``, ``timezone``, ``features`` (name -> type), ``opt_out``, ``eligibility``
and ``suspension`` (lists of predicate rules), ``fatigue`` (structured caps and rest days) and
``score`` (weighted, bounded terms). See the shipped file for a commented example.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from canonical.errors import PolicyError
from canonical.model import FieldType
from canonical.yaml import (
    YamlDocument,
    allowed_keys,
    did_you_mean,
    parse_yaml,
    plain,
    read_text,
)
from rules import catalogue
from rules.expressions import (
    POLARS_TYPES,
    ExpressionError,
    Template,
    compile_expression,
    parse_template,
    referenced_names,
)
from rules.footguns import yaml_footguns

_Strict = ConfigDict(extra="forbid")
_RULE_ID = r"^[a-z][a-z0-9_]{0,62}$"

RuleKind = Literal["opt_out", "suspension", "eligibility"]


class FeatureDecl(BaseModel):
    """A declared feature: its type, and for admin-mapped fields where it comes from."""

    model_config = _Strict

    type: FieldType
    extra: str | None = Field(
        None, description="the key in the contact's or account's `extra` (from the mappings)"
    )
    entity: Literal["contact", "account"] = "contact"


class RuleModel(BaseModel):
    """One predicate rule: an id, a WHERE-clause condition and the reasons shown to people."""

    model_config = _Strict

    id: str = Field(pattern=_RULE_ID)
    when: str
    reason: str = Field(min_length=1, max_length=255)
    null_reason: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _must_be_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            got = "nothing" if value is None else type(value).__name__
            msg = (
                f"the condition must be text, got {got}; YAML reads an unquoted '#' as a comment "
                "and '!' as a tag: write it as a block string (when: >- on its own line, the "
                "condition indented below)"
            )
            raise ValueError(msg)
        return value


class CapModel(BaseModel):
    """A fatigue cap: at most ``max_asks`` asks in ``window_days`` for a contact or its account."""

    model_config = _Strict

    id: str = Field(pattern=_RULE_ID)
    scope: Literal["contact", "account"]
    ask_types: list[str] | None = Field(None, min_length=1)
    teams: list[str] | None = Field(None, min_length=1)
    statuses: list[str] | None = Field(
        None, min_length=1, description="count only asks with these statuses (any case)"
    )
    window_days: int = Field(ge=1, le=3650)
    max_asks: int = Field(ge=1, le=1000)
    description: str | None = None


class FatigueModel(BaseModel):
    """Caps plus a rest period after any ask."""

    model_config = _Strict

    rest_days: int = Field(0, ge=0, le=3650)
    #: The window of the asks count written back whatever the status (Advocate_Asks_90d__c).
    recent_window_days: int = Field(90, ge=1, le=3650)
    caps: list[CapModel] = Field(default_factory=list)


class ConsentModel(BaseModel):
    """Consent per activity: each ask type and the consent type (multi-select value) it needs."""

    model_config = _Strict

    requires: dict[str, str] = Field(min_length=1)


class ScoreTermModel(BaseModel):
    """A score term: ``value`` scaled from ``[min, max]`` onto ``[0, 1]``, clipped, x ``weight``."""

    model_config = _Strict

    id: str = Field(pattern=_RULE_ID)
    value: str
    min: float = 0.0
    max: float = 1.0
    weight: float = Field(gt=0, le=1000)

    @field_validator("value", mode="before")
    @classmethod
    def _must_be_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            msg = "the value must be text (a feature or an expression); quote it"
            raise ValueError(msg)
        return value


class ScoreModel(BaseModel):
    """The 0-100 score: weighted terms; it ranks eligible advocates, never changes a status."""

    model_config = _Strict

    terms: list[ScoreTermModel] = Field(default_factory=list)


class PolicyModel(BaseModel):
    """The whole policy file."""

    model_config = _Strict

    version: str = Field(min_length=1, max_length=64)
    timezone: str = "UTC"
    features: dict[str, Any] = Field(min_length=1)
    opt_out: list[RuleModel] = Field(default_factory=list)
    eligibility: list[RuleModel] = Field(default_factory=list)
    suspension: list[RuleModel] = Field(default_factory=list)
    fatigue: FatigueModel = Field(default_factory=lambda: FatigueModel.model_validate({}))
    consent: ConsentModel | None = None
    score: ScoreModel = Field(default_factory=lambda: ScoreModel())

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone '{value}'; use an IANA name such as 'UTC' or 'Europe/Paris'"
            raise ValueError(msg) from None
        return value


@dataclass(frozen=True)
class FeatureSpec:
    """A feature the store must compute: name, type, level, and its ``extra`` source if mapped."""

    name: str
    type: FieldType
    level: Literal["contact", "account"]
    extra: str | None = None


@dataclass(frozen=True)
class CompiledRule:
    """A predicate rule ready to evaluate."""

    kind: RuleKind
    id: str
    when: str
    expr: pl.Expr
    reason: Template
    null_reason: Template
    description: str | None


def _day_count_problems(*templates: Template) -> str | None:
    """Why a reason naming a day count is refused (None when it names none).

    A day count changes every day, so the reason, and the CRM field it is written to, would
    be rewritten daily with no change in the data. The date it counts from says the same.
    """
    for template in templates:
        for name in template.fields:
            since = catalogue.day_count_date(name)
            if since:
                return (
                    f"{{{name}}} counts days, so the reason would change every day and rewrite "
                    f"the CRM field; name the date instead ({{{since}}}, declared under features:)"
                )
    return None


@dataclass(frozen=True)
class CompiledTerm:
    """A score term ready to evaluate."""

    id: str
    value: str
    expr: pl.Expr
    min: float
    max: float
    weight: float


@dataclass
class Policy:
    """A loaded, validated policy. Build it with :func:`load_policy` or :func:`parse_policy`."""

    model: PolicyModel
    path: str
    hash: str
    features: dict[str, FeatureSpec]
    rules: list[CompiledRule]
    terms: list[CompiledTerm]
    tz: ZoneInfo
    source_text: str = field(repr=False, default="")

    @property
    def version(self) -> str:
        """The admin-set version string, recorded with every evaluation."""
        return self.model.version

    @property
    def caps(self) -> list[CapModel]:
        """The fatigue caps."""
        return self.model.fatigue.caps

    @property
    def rest_days(self) -> int:
        """Days of rest after any ask."""
        return self.model.fatigue.rest_days

    @property
    def recent_asks_feature(self) -> str:
        """The feature counting the asks written back as the recent asks (``asks_last_<N>d``)."""
        return f"asks_last_{self.model.fatigue.recent_window_days}d"

    @property
    def consent_requires(self) -> dict[str, str]:
        """Ask type -> the consent type it needs (empty when the policy has no consent section)."""
        return dict(self.model.consent.requires) if self.model.consent else {}

    def rules_of(self, kind: RuleKind) -> list[CompiledRule]:
        """The rules of one kind, in file order."""
        return [r for r in self.rules if r.kind == kind]

    def required_features(self) -> dict[str, FeatureSpec]:
        """Every feature the features frame must carry (declared ones plus what fatigue needs).

        Cap counts come as extra columns named by :func:`cap_columns`.
        """
        out = dict(self.features)
        # The engagement fields are written whatever the status: always computed.
        needed: list[tuple[str, FieldType]] = [
            ("last_ask_date", "date"),
            (self.recent_asks_feature, "integer"),
        ]
        needed += [
            (catalogue.consent_feature(c), "boolean") for c in self.consent_requires.values()
        ]
        for name, ftype in needed:
            if name not in out:
                out[name] = FeatureSpec(name, ftype, "contact")
        return out

    def input_schema(self) -> dict[str, pl.DataType]:
        """The polars schema of the features frame :func:`rules.evaluate` expects."""
        schema: dict[str, pl.DataType] = {
            k: POLARS_TYPES[t] for k, t in catalogue.KEY_COLUMNS.items()
        }
        for spec in self.required_features().values():
            schema[spec.name] = POLARS_TYPES[spec.type]
        for cap in self.caps:
            count_col, nth_col = cap_columns(cap)
            schema[count_col] = pl.Int64()
            schema[nth_col] = pl.Date()
        return schema


def cap_columns(cap: CapModel) -> tuple[str, str]:
    """Columns the features frame carries for ``cap``.

    ``cap__<id>__count``: asks inside the window; ``cap__<id>__nth``: the date of the
    ``max_asks``-th most recent ask inside the window (NULL when there are fewer). The cap binds
    while count >= max_asks, and stops binding ``window_days`` after that nth date.
    """
    return f"cap__{cap.id}__count", f"cap__{cap.id}__nth"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a policy file.

    Raises:
        PolicyError: listing every problem as ``file:line:col: where: what``.
    """
    p = Path(path)
    text = read_text(
        p,
        PolicyError,
        what="rules file",
        missing_hint="create it or set rules_file / SYNC_RULES_FILE",
    )
    return parse_policy(text, str(p))


def parse_policy(text: str, path: str = "rules.yaml") -> Policy:
    """Validate policy ``text`` (as read from ``path``, used in messages).

    Raises:
        PolicyError: listing every problem as ``file:line:col: where: what``.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    doc = parse_yaml(text, path, PolicyError)
    data = doc.data
    if not isinstance(data, dict):
        msg = f"{path}:1:1: the rules file must be a mapping with version, features, ..."
        raise PolicyError(msg)

    footguns = [
        (loc, f"{doc.where(loc)}: {_label(loc, data)}: {text}") for loc, text in yaml_footguns(doc)
    ]
    try:
        model = PolicyModel.model_validate(plain(data))
    except ValidationError as exc:
        problems = [line for _, line in footguns]
        for err in exc.errors():
            loc = tuple(err["loc"])
            if any(loc == bad for bad, _ in footguns):
                continue  # already said, and better
            text_ = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                close = did_you_mean(str(loc[-1]), allowed_keys(PolicyModel, loc[:-1]))
                text_ = f"unknown key{close or '; check the spelling against the documented keys'}"
            elif err["type"] == "missing":
                text_ = f"'{loc[-1]}' is required" if loc else "required"
                if loc and loc[-1] == "window_days":
                    text_ = "a cap needs window_days (the rolling window the cap counts over)"
                loc = loc[:-1]
            elif err["type"].startswith("literal_error") or err["type"] == "union_tag_invalid":
                text_ = f"{text_} (got {err.get('input')!r})"
            problems.append(f"{doc.where(loc)}: {_label(loc, data)}: {text_}")
        raw_features = data.get("features")
        if isinstance(raw_features, dict):
            _check_features(plain(raw_features), doc, problems)
        problems = _unique(problems)
        raise PolicyError(problems[0], problems=problems) from None

    problems = [line for _, line in footguns]
    policy = _compile(model, path, digest, text, doc, problems)
    if problems:
        raise PolicyError(problems[0], problems=problems)
    assert policy is not None
    return policy


def _compile(
    model: PolicyModel,
    path: str,
    digest: str,
    text: str,
    doc: YamlDocument,
    problems: list[str],
) -> Policy | None:
    features = _check_features(model.features, doc, problems)

    schema: dict[str, pl.DataType] = {k: POLARS_TYPES[t] for k, t in catalogue.KEY_COLUMNS.items()}
    schema.update({n: POLARS_TYPES[s.type] for n, s in features.items()})

    rules: list[CompiledRule] = []
    seen: dict[str, str] = {}
    for kind in ("opt_out", "eligibility", "suspension"):
        for i, rule in enumerate(getattr(model, kind)):
            base = (kind, i)
            label = f"{kind}[{i}] ({rule.id})"
            if rule.id in seen:
                problems.append(
                    f"{doc.where((*base, 'id'))}: {label}: duplicate rule id "
                    f"'{rule.id}' (first at {seen[rule.id]}); ids must be unique"
                )
                continue
            seen[rule.id] = doc.where((*base, "id"))
            try:
                expr = compile_expression(rule.when, schema)
            except ExpressionError as exc:
                problems.append(f"{doc.where((*base, 'when'))}: {label}.when: {exc}")
                continue
            try:
                reason = parse_template(rule.reason, schema)
                null_reason = parse_template(rule.null_reason or rule.reason, schema)
            except ExpressionError as exc:
                problems.append(f"{doc.where((*base, 'reason'))}: {label}.reason: {exc}")
                continue
            drifting = _day_count_problems(reason, null_reason)
            if drifting:
                problems.append(f"{doc.where((*base, 'reason'))}: {label}.reason: {drifting}")
                continue
            rules.append(
                CompiledRule(kind, rule.id, rule.when, expr, reason, null_reason, rule.description)  # type: ignore[arg-type]
            )

    for i, cap in enumerate(model.fatigue.caps):
        label = f"fatigue.caps[{i}] ({cap.id})"
        if cap.id in seen:
            problems.append(
                f"{doc.where(('fatigue', 'caps', i, 'id'))}: {label}: duplicate rule id "
                f"'{cap.id}' (first at {seen[cap.id]}); ids must be unique"
            )
        seen[cap.id] = doc.where(("fatigue", "caps", i, "id"))

    terms: list[CompiledTerm] = []
    for i, term in enumerate(model.score.terms):
        label = f"score.terms[{i}] ({term.id})"
        if term.min == term.max:
            problems.append(
                f"{doc.where(('score', 'terms', i, 'max'))}: {label}: min and max must differ"
            )
            continue
        if term.min > term.max:
            problems.append(
                f"{doc.where(('score', 'terms', i, 'min'))}: {label}: min "
                f"({term.min:g}) is above max ({term.max:g}); swap them (a value at or below min "
                "scores 0, at or above max scores the full weight)"
            )
            continue
        try:
            expr = compile_expression(term.value, schema, want="number")
        except ExpressionError as exc:
            problems.append(f"{doc.where(('score', 'terms', i, 'value'))}: {label}.value: {exc}")
            continue
        names = referenced_names(term.value)
        counts = sorted(n for n in names if catalogue.day_count_date(n))
        if counts and "FLOOR" not in {n.upper() for n in names}:
            problems.append(
                f"{doc.where(('score', 'terms', i, 'value'))}: {label}.value: {counts[0]} "
                "counts days, so the score would move every few days and rewrite the CRM field; "
                f"count whole periods, e.g. FLOOR({counts[0]} / 365) with min and max in years"
            )
            continue
        terms.append(CompiledTerm(term.id, term.value, expr, term.min, term.max, term.weight))

    if problems:
        return None
    return Policy(
        model=model,
        path=path,
        hash=digest,
        features=features,
        rules=rules,
        terms=terms,
        tz=ZoneInfo(model.timezone),
        source_text=text,
    )


def _check_features(
    declared: dict[str, Any], doc: YamlDocument, problems: list[str]
) -> dict[str, FeatureSpec]:
    features: dict[str, FeatureSpec] = {}
    for name, decl in declared.items():
        where = doc.where(("features", name))
        try:
            d = FeatureDecl.model_validate(decl if isinstance(decl, dict) else {"type": decl})
        except ValidationError as exc:
            err = exc.errors()[0]
            got = f" (got {err.get('input')!r})" if err["type"] != "missing" else ""
            problems.append(
                f"{where}: features.{name}: {'.'.join(map(str, err['loc']))}: {err['msg']}{got}"
            )
            continue
        if d.extra is not None:
            if name in catalogue.BUILTIN_FEATURES or catalogue.lookup(name):
                problems.append(
                    f"{where}: features.{name}: a mapped extra field needs its own name, "
                    "not a built-in one"
                )
                continue
            features[name] = FeatureSpec(name, d.type, d.entity, d.extra)
            continue
        info = catalogue.lookup(name)
        if info is None:
            close = did_you_mean(name, catalogue.known_names())
            problems.append(
                f"{where}: features.{name}: unknown feature{close}; "
                "map an admin field with {type: ..., extra: Field__c}"
            )
            continue
        if info.type != d.type:
            problems.append(
                f"{where}: features.{name}: is {info.type}, declared {d.type}; "
                f"declare it as {info.type}"
            )
            continue
        features[name] = FeatureSpec(name, d.type, info.level)

    return features


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _label(loc: Sequence[Any], data: Any) -> str:
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{key}]"]
            if isinstance(node, list) and key < len(node):
                node = node[key]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    parts[-1] += f" ({node['id']})"
            continue
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts) or "policy"
