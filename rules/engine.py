"""Evaluation in bulk: a features frame in, one verdict per contact (or account) out.

Everything is a polars expression over whole columns; there is no per-row Python. The order of
the verdict is the status precedence (``canonical.model.STATUS_PRECEDENCE``):

1. **Opted Out** if any ``opt_out`` rule holds (an explicit no).
2. **Suspended** if any ``suspension`` rule holds.
3. **Not Eligible** if any ``eligibility`` rule does not hold (FALSE or NULL).
4. **Fatigued** if any cap binds (``count >= max_asks`` in its window) or the rest period runs.
5. **Eligible** otherwise.

The reason is that of the first rule (file order) that decided the status; a NULL outcome gives
the rule's ``null_reason``. Fatigue is never hidden: when a cap or the rest period binds but
another rule decides the status, the reason adds it ("no NPS response; also 10 asks in 90 days,
cap 3") and the next available date is still set. The score is computed for everyone and
never changes the status.

Values do not drift with the clock: what is written to the CRM changes only when the data or a
real boundary does (a cap window lets an ask go, the rest period ends). Reasons name dates, not
day counts (the policy refuses a ``*_days`` placeholder); the score is a whole number (its
day-count terms count whole periods, see :mod:`rules.policy`); an Eligible contact's next
available date is empty, not "today" (it may be asked now).

Dates: ``today`` is ``now`` seen in the policy's time zone (the CRM's date convention); an ask
on day D counts in a window of N days while ``D > today - N``, so an ask exactly N days ago no
longer counts, and the contact is available again on ``D + N``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from canonical.errors import PolicyError
from canonical.model import STATUS_PRECEDENCE, Status
from rules import catalogue
from rules.expressions import POLARS_TYPES, format_value
from rules.policy import CapModel, CompiledRule, Policy, cap_columns

#: Reasons are written to a 255-character CRM field; longer ones end with an ellipsis.
REASON_MAX = 255

RESULT_COLUMNS = (
    "status",
    "eligible",
    "score",
    "reason",
    "next_available",
    "recent_asks",
    "last_ask",
    "available_for",
)

#: Separator of a multi-select value as the CRM APIs read and write it.
MULTI_SELECT_SEP = ";"
#: Up to this many consent types, Available For is a table lookup (2^n entries).
_MAX_CONSENT_BITS = 10


def rule_column(rule_id: str) -> str:
    """The output column holding a rule's raw outcome (TRUE, FALSE or NULL)."""
    return f"rule__{rule_id}"


def today_for(policy: Policy, now: datetime) -> date:
    """The calendar date of ``now`` in the policy's time zone.

    Raises:
        PolicyError: if ``now`` is naive (a naive time is local time sneaking in).
    """
    if now.tzinfo is None:
        msg = "evaluate() needs an aware datetime for now (UTC); got a naive one"
        raise PolicyError(msg)
    return now.astimezone(policy.tz).date()


def cap_words(cap: CapModel, count: int | str) -> str:
    """A cap in words, e.g. '3 asks in 90 days, cap 3'."""
    kinds = ""
    if cap.ask_types:
        kinds = "/".join(t.lower() for t in cap.ask_types) + " "
    team = f" by {'/'.join(cap.teams)}" if cap.teams else ""
    scope = " on the account" if cap.scope == "account" else ""
    noun = "ask" if str(count) == "1" else "asks"
    return f"{count} {kinds}{noun}{team}{scope} in {cap.window_days} days, cap {cap.max_asks}"


def _check_frame(policy: Policy, features: pl.DataFrame) -> pl.DataFrame:
    schema = policy.input_schema()
    missing = [c for c in schema if c not in features.columns]
    if missing:
        msg = f"the features frame lacks {', '.join(missing)}; compute them for this policy"
        raise PolicyError(msg)
    casts = [pl.col(c).cast(t) for c, t in schema.items() if features.schema[c] != t]
    return features.with_columns(casts) if casts else features


def _first(cases: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    if not cases:
        return pl.lit(None, dtype=pl.String)
    chain: Any = pl.when(cases[0][0]).then(cases[0][1])
    for cond, value in cases[1:]:
        chain = chain.when(cond).then(value)
    out: pl.Expr = chain.otherwise(pl.lit(None, dtype=pl.String))
    return out


def _fill_by_case(
    frame: pl.DataFrame, cases: list[tuple[pl.Expr, pl.Expr]], name: str
) -> pl.DataFrame:
    """Add column ``name``: the text of the first case whose condition holds (else NULL).

    Each text (a filled template: string formatting, the costly part) is computed only on the
    rows its case decides, not on every row as one long when/then chain would.
    """
    if not cases:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    decider: Any = pl.when(cases[0][0]).then(pl.lit(0, dtype=pl.Int32))
    for i, (cond, _text) in enumerate(cases[1:], start=1):
        decider = decider.when(cond).then(pl.lit(i, dtype=pl.Int32))
    frame = frame.with_columns(
        decider.otherwise(pl.lit(None, dtype=pl.Int32)).alias("_case"),
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
    )
    used = frame.get_column("_case").unique().drop_nulls().to_list()
    parts = [
        frame.lazy()
        .filter(pl.col("_case") == i)
        .select("_row", cases[i][1].cast(pl.String).alias(name))
        for i in used
    ]
    column = pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias(name)
    for part in pl.collect_all(parts) if parts else []:
        column = column.scatter(part.get_column("_row"), part.get_column(name))
    return frame.drop("_case", "_row").with_columns(column)


def _holds(rule: CompiledRule) -> pl.Expr:
    return pl.col(rule_column(rule.id)).fill_null(False)


def _rule_reason(
    rule: CompiledRule, schema: dict[str, pl.DataType], *, failing: bool
) -> list[tuple[pl.Expr, pl.Expr]]:
    col = pl.col(rule_column(rule.id))
    if failing:  # eligibility: FALSE gives the reason, NULL the null reason
        return [
            (col.is_null(), rule.null_reason.expr(schema)),
            (~col, rule.reason.expr(schema)),
        ]
    return [(col.fill_null(False), rule.reason.expr(schema))]


def evaluate(policy: Policy, features: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Evaluate ``policy`` over ``features`` as of ``now``.

    Args:
        policy: a loaded policy.
        features: one row per contact with ``contact_id``, ``account_id``, every column of
            :meth:`Policy.input_schema` (declared features and cap counts).
        now: the run's one ``now`` (aware).

    Returns:
        One row per input row: ``contact_id``, ``account_id``, ``status``, ``eligible``,
        ``score`` (a whole number, 0-100), ``reason``, ``next_available`` (the date the
        fatigue lifts whenever a cap or the rest period binds, whatever the status; else NULL:
        an Eligible contact may be asked now, and "today" would change every day),
        ``recent_asks`` (asks in the policy's recent window), ``last_ask`` (date of the latest
        ask), ``available_for`` (the ask types the contact may be asked for now,
        ';'-separated), ``fatigued``, ``fatigue_reason`` and one ``rule__<id>`` column per
        rule with its raw outcome.

    Raises:
        PolicyError: if a column is missing or ``now`` is naive.
    """
    today = today_for(policy, now)
    frame = _check_frame(policy, features)
    schema = dict(frame.schema)
    today_lit = pl.lit(today, dtype=pl.Date)

    frame = frame.with_columns(
        [r.expr.cast(pl.Boolean).alias(rule_column(r.id)) for r in policy.rules]
    )

    # Fatigue: each cap binds until its nth most recent ask leaves the window.
    binds: list[pl.Expr] = []
    untils: list[pl.Expr] = []
    words: list[pl.Expr] = []
    for cap in policy.caps:
        count_col, nth_col = cap_columns(cap)
        count = pl.col(count_col).fill_null(0)
        binds.append(count >= cap.max_asks)
        untils.append(pl.col(nth_col) + pl.duration(days=cap.window_days))
        words.append(_cap_words_expr(cap, count))
    if policy.rest_days:
        last = pl.col("last_ask_date")
        rest_until = last + pl.duration(days=policy.rest_days)
        binds.append(rest_until.fill_null(today_lit) > today_lit)
        untils.append(rest_until)
        words.append(
            pl.concat_str(
                [
                    pl.lit("rest period after the ask on "),
                    last.dt.strftime("%Y-%m-%d"),
                    pl.lit(f" ({policy.rest_days} days)"),
                ]
            )
        )
    tmp = [f"_fat_b{i}" for i in range(len(binds))]
    tmp_u = [f"_fat_u{i}" for i in range(len(binds))]
    frame = frame.with_columns(
        [b.alias(n) for b, n in zip(binds, tmp, strict=True)]
        + [
            pl.when(b).then(u).otherwise(None).alias(n)
            for b, u, n in zip(binds, untils, tmp_u, strict=True)
        ]
    )
    if binds:
        fatigued = pl.any_horizontal([pl.col(n) for n in tmp])
        fatigue_until = pl.max_horizontal([pl.col(n) for n in tmp_u])
    else:
        fatigued = pl.lit(False)
        fatigue_until = pl.lit(None, dtype=pl.Date)
    frame = frame.with_columns(fatigued.alias("fatigued"), fatigue_until.alias("_fat_until"))
    # The binding constraint is the one that lifts last: it decides the next available date.
    frame = _fill_by_case(
        frame,
        [
            (pl.col(b) & (pl.col(u) == pl.col("_fat_until")).fill_null(True), w)
            for b, u, w in zip(tmp, tmp_u, words, strict=True)
        ],
        "fatigue_reason",
    )

    opted_out = pl.any_horizontal(
        [_holds(r) for r in policy.rules_of("opt_out")] or [pl.lit(False)]
    )
    suspended = pl.any_horizontal(
        [_holds(r) for r in policy.rules_of("suspension")] or [pl.lit(False)]
    )
    not_eligible = pl.any_horizontal(
        [~_holds(r) for r in policy.rules_of("eligibility")] or [pl.lit(False)]
    )
    status = (
        pl.when(opted_out)
        .then(pl.lit(Status.OPTED_OUT.value))
        .when(suspended)
        .then(pl.lit(Status.SUSPENDED.value))
        .when(not_eligible)
        .then(pl.lit(Status.NOT_ELIGIBLE.value))
        .when(pl.col("fatigued"))
        .then(pl.lit(Status.FATIGUED.value))
        .otherwise(pl.lit(Status.ELIGIBLE.value))
    )
    frame = frame.with_columns(status.alias("status"))

    st = pl.col("status")
    hidden = pl.col("fatigued") & pl.col("fatigue_reason").is_not_null()
    cases: list[tuple[pl.Expr, pl.Expr]] = []
    for kind, status_value, failing in (
        ("opt_out", Status.OPTED_OUT, False),
        ("suspension", Status.SUSPENDED, False),
        ("eligibility", Status.NOT_ELIGIBLE, True),
    ):
        for rule in policy.rules_of(kind):  # type: ignore[arg-type]
            for cond, text in _rule_reason(rule, schema, failing=failing):
                decided = (st == status_value.value) & cond
                # Fatigue is never hidden: when another rule decides, the reason says so too.
                also = pl.concat_str([text, pl.lit("; also "), pl.col("fatigue_reason")])
                cases.append((decided & hidden, also))
                cases.append((decided, text))
    cases.append((st == Status.FATIGUED.value, pl.col("fatigue_reason")))
    cases.append((st == Status.ELIGIBLE.value, pl.lit("Eligible")))
    frame = _fill_by_case(frame, cases, "reason")
    reason = pl.col("reason").fill_null(st)
    reason = (
        pl.when(reason.str.len_chars() > REASON_MAX)
        .then(reason.str.slice(0, REASON_MAX - 1) + pl.lit("…"))
        .otherwise(reason)
    )

    # A binding cap or rest period dates the next ask whatever rule decided the status. Else
    # nothing: an Eligible contact may be asked now, and "today" would rewrite the field daily.
    next_available = (
        pl.when(pl.col("fatigued"))
        .then(pl.col("_fat_until"))
        .otherwise(pl.lit(None, dtype=pl.Date))
    )
    frame = frame.with_columns(
        reason.alias("reason"),
        (st == Status.ELIGIBLE.value).alias("eligible"),
        _score_expr(policy).alias("score"),
        next_available.alias("next_available"),
        pl.col(policy.recent_asks_feature).fill_null(0).cast(pl.Int64).alias("recent_asks"),
        pl.col("last_ask_date").alias("last_ask"),
        available_for_expr(policy).alias("available_for"),
    )
    rule_cols = [rule_column(r.id) for r in policy.rules]
    return frame.select(
        "contact_id",
        "account_id",
        *RESULT_COLUMNS,
        "fatigued",
        "fatigue_reason",
        *rule_cols,
    )


def available_for_expr(policy: Policy) -> pl.Expr:
    """The ask types a contact may be asked for now, as a multi-select value (NULL: none).

    Only an Eligible contact may be asked at all; of the policy's ask types, those whose
    consent the contact gave. NULL for everyone when the policy has no consent section.
    """
    requires = policy.consent_requires
    if not requires:
        return pl.lit(None, dtype=pl.String)
    eligible = pl.col("status") == Status.ELIGIBLE.value
    consents = list(dict.fromkeys(requires.values()))
    if len(consents) > _MAX_CONSENT_BITS:  # too many combinations to tabulate: join per row
        parts = [
            pl.when(eligible & pl.col(catalogue.consent_feature(c)).fill_null(False)).then(
                pl.lit(ask_type)
            )
            for ask_type, c in requires.items()
        ]
        joined = pl.concat_str(parts, separator=MULTI_SELECT_SEP, ignore_nulls=True)
        return pl.when(joined == "").then(pl.lit(None, dtype=pl.String)).otherwise(joined)
    # The consents as bits of one integer, then one lookup of the (few) possible answers:
    # cheaper than joining strings on every row.
    mask = pl.sum_horizontal(
        [
            pl.col(catalogue.consent_feature(c)).fill_null(False).cast(pl.Int32) * (1 << i)
            for i, c in enumerate(consents)
        ]
    )
    table: dict[int, str | None] = {}
    for m in range(1 << len(consents)):
        allowed = [t for t, c in requires.items() if m & (1 << consents.index(c))]
        table[m] = MULTI_SELECT_SEP.join(allowed) or None
    lookup = mask.replace_strict(table, return_dtype=pl.String)
    return pl.when(eligible).then(lookup).otherwise(pl.lit(None, dtype=pl.String))


def _cap_words_expr(cap: CapModel, count: pl.Expr) -> pl.Expr:
    head, tail = cap_words(cap, "\x00").split("\x00")
    return (
        pl.when(count == 1)
        .then(pl.lit(cap_words(cap, 1)))
        .otherwise(pl.concat_str([pl.lit(head), count.cast(pl.String), pl.lit(tail)]))
    )


def _score_expr(policy: Policy) -> pl.Expr:
    if not policy.terms:
        return pl.lit(0.0)
    total = sum(t.weight for t in policy.terms)
    parts = [
        ((t.expr.cast(pl.Float64) - t.min) / (t.max - t.min))
        .clip(0.0, 1.0)
        .fill_null(0.0)
        .fill_nan(0.0)
        * t.weight
        for t in policy.terms
    ]
    # Whole points: a fraction would move with clock noise and rewrite the CRM field for nothing.
    return (pl.sum_horizontal(parts) * (100.0 / total)).round(0)


def account_features_schema(policy: Policy) -> dict[str, pl.DataType]:
    """The columns of the account-level features frame: ``account_id`` and account features."""
    schema: dict[str, pl.DataType] = {"account_id": pl.String()}
    for spec in policy.required_features().values():
        if spec.level == "account":
            schema[spec.name] = POLARS_TYPES[spec.type]
    return schema


def evaluate_accounts(
    policy: Policy, accounts: pl.DataFrame, contact_results: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    """One verdict per account, from its own features and its contacts' verdicts.

    An account is Suspended when a suspension rule holds on its account-level features (rules
    that need contact features give NULL there and so do not hold). Otherwise it is Eligible
    when at least one contact is ("3 eligible advocates"; no next available date: one may be
    asked now), Fatigued when its candidates are all fatigued (next available: the earliest of
    theirs), else Not Eligible.

    Args:
        policy: the policy.
        accounts: ``account_id`` plus the account-level features.
        contact_results: :func:`evaluate` output for the contacts of these accounts.
        now: the run's ``now``.
    """
    today_for(policy, now)  # refuses a naive now, as evaluate() does
    schema = policy.input_schema()
    frame = accounts.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in accounts.columns]
    ).with_columns([pl.col(c).cast(t) for c, t in schema.items()])
    rules = policy.rules_of("suspension")
    frame = frame.with_columns([r.expr.cast(pl.Boolean).alias(rule_column(r.id)) for r in rules])
    fschema = dict(frame.schema)
    suspended = pl.any_horizontal([_holds(r) for r in rules] or [pl.lit(False)])
    susp_reason = _first([c for r in rules for c in _rule_reason(r, fschema, failing=False)])

    agg = contact_results.group_by("account_id").agg(
        pl.len().alias("_n"),
        (pl.col("status") == Status.ELIGIBLE.value).sum().alias("_eligible"),
        (pl.col("status") == Status.FATIGUED.value).sum().alias("_fatigued"),
        (pl.col("status") == Status.OPTED_OUT.value).sum().alias("_opted_out"),
        pl.col("score").filter(pl.col("eligible")).max().alias("_best_eligible_score"),
        pl.col("score").max().alias("_best_score"),
        pl.col("next_available")
        .filter(pl.col("status") == Status.FATIGUED.value)
        .min()
        .alias("_fat_next"),
    )
    frame = frame.join(agg, on="account_id", how="left").with_columns(
        pl.col("_n", "_eligible", "_fatigued", "_opted_out").fill_null(0)
    )
    n_elig = pl.col("_eligible")
    status = (
        pl.when(suspended)
        .then(pl.lit(Status.SUSPENDED.value))
        .when(n_elig > 0)
        .then(pl.lit(Status.ELIGIBLE.value))
        .when(pl.col("_fatigued") > 0)
        .then(pl.lit(Status.FATIGUED.value))
        .otherwise(pl.lit(Status.NOT_ELIGIBLE.value))
    )
    frame = frame.with_columns(status.alias("status"))
    st = pl.col("status")
    plural = pl.when(n_elig == 1).then(pl.lit("")).otherwise(pl.lit("s"))
    reason = (
        pl.when(st == Status.SUSPENDED.value)
        .then(susp_reason)
        .when(st == Status.ELIGIBLE.value)
        .then(pl.concat_str([n_elig.cast(pl.String), pl.lit(" eligible advocate"), plural]))
        .when(st == Status.FATIGUED.value)
        .then(pl.lit("every candidate advocate is fatigued"))
        .when(pl.col("_n") == 0)
        .then(pl.lit("no contacts"))
        .when(pl.col("_opted_out") == pl.col("_n"))
        .then(pl.lit("every contact opted out"))
        .otherwise(pl.lit("no eligible advocate"))
    )
    next_available = (
        pl.when(st == Status.FATIGUED.value)
        .then(pl.col("_fat_next"))
        .otherwise(pl.lit(None, dtype=pl.Date))
    )
    return frame.select(
        "account_id",
        st.alias("status"),
        pl.lit(None, dtype=pl.Int64).alias("recent_asks"),
        pl.lit(None, dtype=pl.Date).alias("last_ask"),
        pl.lit(None, dtype=pl.String).alias("available_for"),
        (st == Status.ELIGIBLE.value).alias("eligible"),
        pl.coalesce("_best_eligible_score", "_best_score").fill_null(0.0).alias("score"),
        reason.fill_null(st).alias("reason"),
        next_available.alias("next_available"),
        pl.col("_n").alias("contacts"),
        n_elig.alias("eligible_contacts"),
        *[rule_column(r.id) for r in rules],
    )


def explain(policy: Policy, features: pl.DataFrame, now: datetime) -> dict[str, Any]:
    """Why one contact has its status: every feature, every rule, every cap, the score terms.

    Args:
        policy: the policy.
        features: the contact's features (one row, as for :func:`evaluate`).
        now: the run's ``now``.

    Returns:
        A JSON-ready dict: ``features``, ``rules`` (id, kind, condition, outcome
        ``holds``/``does not hold``/``unknown``, the reason it gives), ``caps`` (count, window,
        max, binding, in words), ``rest``, ``score_terms``, and the verdict.
    """
    if features.height != 1:
        msg = f"explain needs exactly one row of features, got {features.height}"
        raise PolicyError(msg)
    result = evaluate(policy, features, now).row(0, named=True)
    frame = _check_frame(policy, features)
    values = frame.row(0, named=True)
    today = today_for(policy, now)
    rules_out = []
    for rule in policy.rules:
        outcome = result[rule_column(rule.id)]
        if outcome is None:
            # unknown never holds: it blocks eligibility (null reason) and fires nothing else
            word = "unknown"
            text = rule.null_reason.fill(values) if rule.kind == "eligibility" else ""
        else:
            word = "holds" if outcome else "does not hold"
            gives = outcome if rule.kind != "eligibility" else not outcome
            text = rule.reason.fill(values) if gives else ""
        rules_out.append(
            {
                "id": rule.id,
                "kind": rule.kind,
                "when": " ".join(rule.when.split()),
                "outcome": word,
                "reason": text or None,
            }
        )
    caps_out = []
    for cap in policy.caps:
        count_col, nth_col = cap_columns(cap)
        count = int(values[count_col] or 0)
        nth = values[nth_col]
        binding = count >= cap.max_asks
        caps_out.append(
            {
                "id": cap.id,
                "scope": cap.scope,
                "ask_types": cap.ask_types,
                "teams": cap.teams,
                "window_days": cap.window_days,
                "max_asks": cap.max_asks,
                "count": count,
                "binding": binding,
                "words": cap_words(cap, count),
                "until": (nth + timedelta(days=cap.window_days)).isoformat()
                if binding and nth
                else None,
            }
        )
    rest: dict[str, Any] | None = None
    if policy.rest_days:
        last = values.get("last_ask_date")
        until = last + timedelta(days=policy.rest_days) if last else None
        rest = {
            "rest_days": policy.rest_days,
            "last_ask_date": format_value(last) if last else None,
            "binding": bool(until and until > today),
            "until": until.isoformat() if until else None,
        }
    terms_out = []
    score_frame = (
        frame.select([t.expr.cast(pl.Float64).alias(t.id) for t in policy.terms])
        if policy.terms
        else None
    )
    total = sum(t.weight for t in policy.terms) or 1.0
    for t in policy.terms:
        v = score_frame[t.id][0] if score_frame is not None else None
        part = 0.0 if v is None else min(1.0, max(0.0, (v - t.min) / (t.max - t.min)))
        terms_out.append(
            {
                "id": t.id,
                "value": v,
                "min": t.min,
                "max": t.max,
                "weight": t.weight,
                "points": round(100.0 * part * t.weight / total, 1),
            }
        )
    feature_names = [c for c in policy.input_schema() if c not in catalogue.KEY_COLUMNS]
    return {
        "contact_id": values["contact_id"],
        "account_id": values["account_id"],
        "now": now.isoformat(),
        "today": today.isoformat(),
        "policy_version": policy.version,
        "policy_hash": policy.hash,
        "status": result["status"],
        "eligible": result["eligible"],
        "score": result["score"],
        "reason": result["reason"],
        "next_available": format_value(result["next_available"])
        if result["next_available"]
        else None,
        "recent_asks": result["recent_asks"],
        "last_ask": format_value(result["last_ask"]) if result["last_ask"] else None,
        "available_for": result["available_for"],
        "features": {k: _jsonable(values[k]) for k in feature_names},
        "rules": rules_out,
        "caps": caps_out,
        "rest": rest,
        "score_terms": terms_out,
        "precedence": [s.value for s in STATUS_PRECEDENCE],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value
