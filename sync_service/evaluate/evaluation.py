"""Evaluation of the whole store: features -> rules -> ``evaluations`` and ``evaluation_history``.

Chunk by chunk (see :mod:`sync_service.evaluate.features`), the verdicts are loaded into a temporary
staging table (``COPY`` on PostgreSQL, one ``executemany`` on SQLite), and three set-based
statements do the rest: count the status transitions against the current ``evaluations``, append
a history row for each change (time, reason, policy version and hash), and upsert the verdicts
(``INSERT ... SELECT ... ON CONFLICT DO UPDATE``). A dry run does the same inside a transaction
that is rolled back, so it reports exactly what a real run would change and writes nothing.

Never a silent truncation: the number of contacts evaluated is checked against the number of
live Salesforce contacts in the store, and a mismatch fails the run.

The policy comes from ``settings.rules_file``. A valid policy is kept as the last valid one
(``rules.last-valid.yaml`` in the service's var folder); when a later edit is invalid, the run
reports every problem and keeps evaluating with the last valid policy, so a broken rule is never
silently switched off.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from canonical.errors import PolicyError, StoreError
from canonical.model import ERASED_REASON, Status, System
from canonical.yaml import keep_last_valid
from rules import (
    Policy,
    evaluate,
    evaluate_accounts,
    load_policy,
    parse_policy,
    rule_column,
    today_for,
)
from rules.horizon import valid_until
from sync_service.evaluate.features.chunks import DEFAULT_CHUNK
from sync_service.evaluate.features.parallel import stream_feature_chunks
from sync_service.ops.progress import ProgressHook
from sync_service.ops.runs import Run
from sync_service.store.models import (
    ERASED_KEY,
    accounts,
    contacts,
    eval_scope,
    evaluation_history,
    evaluations,
)
from sync_service.sync import changes
from sync_service.sync.changes import in_scope, scope_contact_ids
from sync_service.sync.orphans import count_orphans, orphan_contacts

log = logging.getLogger(__name__)

EXAMPLES_PER_TRANSITION = 3
SNAPSHOT_NAME = "rules.last-valid.yaml"

#: The columns of an ``evaluations`` row that the run stamps (the rest are the rules' results).
RUN_COLUMNS = ("policy_version", "policy_hash", "evaluated_at", "run_id")


def _stage_column(column: sa.Column[Any]) -> sa.Column[Any]:
    # details travel as JSON text (COPY's csv, the driver's executemany); cast on the way in.
    kind: Any = sa.Text() if column.name == "details" else column.type
    return sa.Column(column.name, kind, nullable=column.nullable)


_stage_meta = sa.MetaData()
#: Verdicts of the current chunk, per connection; never persisted. The result columns of
#: ``evaluations``, derived from it so that a new result column is staged without a second edit.
stage = sa.Table(
    "eval_stage",
    _stage_meta,
    *(_stage_column(c) for c in evaluations.c if c.name not in RUN_COLUMNS),
    sa.PrimaryKeyConstraint("entity_type", "entity_id"),
    prefixes=["TEMPORARY"],
)
_STAGE_COLS = [c.name for c in stage.c]


@dataclass
class EvaluationSummary:
    """What a run evaluated and changed (or, in a dry run, would change)."""

    policy_version: str
    policy_hash: str
    dry_run: bool
    contacts: int = 0
    accounts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    #: Verdicts dropped because their contact or account is gone from the CRM.
    removed: int = 0
    #: Contacts not evaluated because their account does not exist (see sync.orphans).
    orphans: int = 0
    #: Only what changed (and what the clock reached) was evaluated: see sync.changes.
    incremental: bool = False

    @property
    def changed(self) -> int:
        """Entities whose status changes (a first evaluation counts as a change from none)."""
        return sum(self.transitions.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "policy_version": self.policy_version,
            "policy_hash": self.policy_hash,
            "dry_run": self.dry_run,
            "contacts": self.contacts,
            "accounts": self.accounts,
            "changed": self.changed,
            "removed": self.removed,
            "incremental": self.incremental,
            "statuses": dict(self.statuses),
            "transitions": [
                {
                    "entity_type": et,
                    "from": old or None,
                    "to": new,
                    "count": n,
                    "examples": self.examples.get((et, old, new), []),
                }
                for (et, old, new), n in self.transitions.most_common()
            ],
        }


def _details(results: pl.DataFrame, rule_ids: list[str]) -> pl.Expr:
    fields: list[pl.Expr] = []
    if "fatigue_reason" in results.columns:
        fields.append(pl.col("fatigue_reason").alias("fatigue"))
    if "contacts" in results.columns:
        fields += [pl.col("contacts"), pl.col("eligible_contacts")]
    present = [r for r in rule_ids if rule_column(r) in results.columns]
    if present:
        fields.append(pl.struct([pl.col(rule_column(r)).alias(r) for r in present]).alias("rules"))
    return pl.struct(fields).struct.json_encode() if fields else pl.lit("{}")


def _stage_frame(
    results: pl.DataFrame, entity_type: str, id_col: str, rule_ids: list[str]
) -> pl.DataFrame:
    made = {
        "entity_type": pl.lit(entity_type),
        "entity_id": pl.col(id_col),
        "details": _details(results, rule_ids),
    }
    # Every other staged column is the engine's result column of the same name.
    return results.select(made.get(c, pl.col(c)).alias(c) for c in _STAGE_COLS)


def _load_stage(conn: Connection, frame: pl.DataFrame) -> None:
    conn.execute(stage.delete())
    if frame.height == 0:
        return
    if conn.dialect.name == "postgresql":
        buf = io.BytesIO()
        frame.write_csv(buf, include_header=False, date_format="%Y-%m-%d")
        dbapi = conn.connection.driver_connection
        copy_sql = f"COPY eval_stage ({', '.join(_STAGE_COLS)}) FROM STDIN WITH (FORMAT csv)"
        with dbapi.cursor() as cur, cur.copy(copy_sql) as cp:  # type: ignore[union-attr]
            cp.write(buf.getvalue())
        return
    rows = frame.with_columns(
        pl.col("next_available", "last_ask", "valid_until").cast(pl.String)
    ).rows()
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        placeholders = ", ".join("?" for _ in _STAGE_COLS)
        cur.executemany(
            f"INSERT INTO eval_stage ({', '.join(_STAGE_COLS)}) VALUES ({placeholders})", rows
        )
    finally:
        cur.close()


def _changed_join() -> tuple[Any, Any]:
    e = evaluations
    joined = stage.outerjoin(
        e, sa.and_(e.c.entity_type == stage.c.entity_type, e.c.entity_id == stage.c.entity_id)
    )
    changed = sa.or_(e.c.status.is_(None), e.c.status != stage.c.status)
    return joined, changed


def _count_transitions(conn: Connection, summary: EvaluationSummary) -> None:
    e = evaluations
    joined, changed = _changed_join()
    rows = conn.execute(
        sa.select(stage.c.entity_type, e.c.status, stage.c.status, stage.c.entity_id)
        .select_from(joined)
        .where(changed)
    ).all()
    if not rows:
        return
    frame = pl.DataFrame(rows, schema=["et", "old", "new", "eid"], orient="row").with_columns(
        pl.col("old").fill_null("")
    )
    per = frame.group_by("et", "old", "new").agg(
        pl.len().alias("n"), pl.col("eid").sort().head(EXAMPLES_PER_TRANSITION).alias("ex")
    )
    for et, old, new, n, ex in per.iter_rows():
        key = (et, old, new)
        summary.transitions[key] += n
        have = summary.examples.setdefault(key, [])
        have.extend(ex[: max(0, EXAMPLES_PER_TRANSITION - len(have))])


def _write(conn: Connection, policy: Policy, now: datetime, run_id: int | None) -> None:
    e = evaluations
    joined, changed = _changed_join()
    meta = {
        "policy_version": sa.literal(policy.version, sa.String()),
        "policy_hash": sa.literal(policy.hash, sa.String()),
    }
    conn.execute(
        evaluation_history.insert().from_select(
            [
                "entity_type",
                "entity_id",
                "old_status",
                "new_status",
                "reason",
                "policy_version",
                "policy_hash",
                "changed_at",
                "run_id",
            ],
            sa.select(
                stage.c.entity_type,
                stage.c.entity_id,
                e.c.status,
                stage.c.status,
                stage.c.reason,
                meta["policy_version"],
                meta["policy_hash"],
                sa.literal(now, evaluation_history.c.changed_at.type),
                sa.literal(run_id, sa.Integer()),
            )
            .select_from(joined)
            .where(changed),
        )
    )
    details: Any = stage.c.details
    if conn.dialect.name == "postgresql":
        details = sa.cast(stage.c.details, postgresql.JSONB)
    keys = ("entity_type", "entity_id")
    staged = {c: (details if c == "details" else stage.c[c]) for c in _STAGE_COLS}
    staged["policy_hash"] = meta["policy_hash"]
    # An unchanged verdict is not rewritten: no dead rows, evaluated_at says when the verdict
    # (or the policy behind it) last changed, and a run that changes nothing writes nothing.
    # Filtering here, not only in ON CONFLICT ... WHERE, spares the database an attempted
    # insert and a conflict per unchanged row, the bulk of an ordinary run.
    differs = sa.or_(
        e.c.entity_id.is_(None),
        *[e.c[c].is_distinct_from(v) for c, v in staged.items() if c not in keys],
    )
    cols = [*_STAGE_COLS, *RUN_COLUMNS]
    select = (
        sa.select(
            *[staged[c] for c in _STAGE_COLS],
            meta["policy_version"],
            meta["policy_hash"],
            sa.literal(now, e.c.evaluated_at.type),
            sa.literal(run_id, sa.Integer()),
        )
        .select_from(joined)
        .where(differs)
    )
    ins: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(e)
    ins = ins.from_select(cols, select)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: ins.excluded[c] for c in cols if c not in keys},
        )
    )


def _verdicts_on_file(conn: Connection) -> int:
    """Rows in ``evaluations``: after a run, any other number than it evaluated means stale rows."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(evaluations)).scalar_one())


def _remove_gone(conn: Connection, *, scoped: bool = False) -> int:
    """Drop the verdicts of contacts and accounts deleted (or merged away) in the CRM.

    Their history stays; only the current verdict goes, so counts of statuses speak of live
    records. Writeback never writes to deleted records anyway. ``scoped``: only among what an
    incremental evaluation reaches (a deletion is a change, so its record is in scope).
    """
    removed = 0
    for entity_type, table in (("contact", contacts), ("account", accounts)):
        live = sa.exists().where(
            table.c.source == System.SALESFORCE,
            table.c.id == evaluations.c.entity_id,
            table.c.deleted == sa.false(),
        )
        where = [evaluations.c.entity_type == entity_type, ~live]
        if scoped and table is contacts:
            where.append(evaluations.c.entity_id.in_(scope_contact_ids()))
        elif scoped:
            where.append(evaluations.c.entity_id.in_(sa.select(eval_scope.c.id)))
        removed += conn.execute(evaluations.delete().where(*where)).rowcount or 0
    return removed


def erased_contacts(conn: Connection, *, scoped: bool = False) -> list[str]:
    """Salesforce contacts erased on request (``sync-service forget``): Opted Out for good.

    ``scoped``: only those an incremental evaluation reaches.
    """
    c = contacts
    where = [
        c.c.source == System.SALESFORCE,
        c.c.email.is_(None),  # an erased row has none: the cheap test first
        c.c.extra[ERASED_KEY].as_boolean().is_(True),
    ]
    if scoped:
        where.append(in_scope(c))
    return list(conn.execute(sa.select(c.c.id).where(*where)).scalars())


def mark_erased(results: pl.DataFrame, erased: list[str]) -> pl.DataFrame:
    """Make contacts erased on request Opted Out, with no score and no date.

    Whatever the policy (it may have no opt-out rule) and whatever the CRM still says.
    """
    if not erased or results.height == 0:
        return results
    hit = pl.col("contact_id").is_in(erased)
    return results.with_columns(
        pl.when(hit)
        .then(pl.lit(Status.OPTED_OUT.value))
        .otherwise(pl.col("status"))
        .alias("status"),
        pl.when(hit).then(pl.lit(False)).otherwise(pl.col("eligible")).alias("eligible"),
        pl.when(hit).then(None).otherwise(pl.col("score")).alias("score"),
        pl.when(hit).then(pl.lit(ERASED_REASON)).otherwise(pl.col("reason")).alias("reason"),
        pl.when(hit).then(None).otherwise(pl.col("next_available")).alias("next_available"),
        # nothing of the person's engagement or consent is written back either
        *[
            pl.when(hit).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("recent_asks", "last_ask", "available_for")
            if c in results.columns
        ],
    )


def _live_contacts(conn: sa.Connection) -> int:
    query = sa.select(sa.func.count()).select_from(contacts).where(contacts.c.deleted.is_(False))
    return int(conn.execute(query).scalar_one())


def evaluate_all(
    engine: Engine,
    policy: Policy,
    now: datetime,
    run: Run | None,
    *,
    dry_run: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressHook | None = None,
    incremental: bool = False,
    inputs_digest: str | None = None,
) -> EvaluationSummary:
    """Evaluate every live contact and account and record the verdicts.

    With ``incremental``, only the accounts the change marks reach (and those whose verdicts'
    ``valid_until`` has come) are evaluated (see :mod:`sync_service.sync.changes`); it turns
    into a full evaluation when a mark asks for one, when nothing was evaluated yet, or when
    ``inputs_digest`` (the policy and mappings the verdicts come from) differs from the last
    run's. Either way the marks read are consumed in the last transaction.

    Args:
        engine: the store.
        policy: the policy to apply.
        now: the run's one ``now`` (aware UTC).
        run: the run record (its id goes on every row; counts are added); None for a dry run.
        dry_run: compute and count the changes, write nothing.
        chunk_size: contacts per chunk; memory is bounded by it.
        progress: told ``("evaluate.contacts", n, total)`` after each chunk.
        incremental: evaluate only what the change marks and the clock reach (see above).
        inputs_digest: the policy and mappings' digest; a new one means a full evaluation.

    Returns:
        The counts, transitions ``(entity_type, from, to)`` and a few example ids of each.

    Raises:
        StoreError: if the number of contacts evaluated differs from the store's.
    """
    summary = EvaluationSummary(policy.version, policy.hash, dry_run)
    rule_ids = [r.id for r in policy.rules]
    run_id = run.id if run else None
    today = today_for(policy, now)
    with engine.connect() as conn:
        upto = changes.last_seq(conn)
        if incremental and not dry_run:
            summary.incremental = _can_be_incremental(conn, upto, inputs_digest)
        # nothing changed and nothing is due: no feature is read, nothing is written
        idle = False
        if summary.incremental:
            scope_size = changes.fill_scope(conn, upto, today)
            idle = scope_size == 0
            if run is not None:
                run.add("evaluation.scope", scope_size)
        scoped = summary.incremental
        erased = erased_contacts(conn, scoped=scoped) if not idle else []
        # Orphans are few (a broken reference, a parent not synced yet): held in memory.
        orphan_ids = orphan_contacts(conn, scoped=scoped) if not idle else set()
        stage.create(conn, checkfirst=True)
        total = _live_contacts(conn) if progress is not None else None
        conn.commit()
        outer = conn.begin() if dry_run else None
        try:
            # features are read by two readers on connections of their own, ahead of the writes
            chunks = (
                stream_feature_chunks(
                    engine, policy, now, chunk_size=chunk_size, scoped=summary.incremental
                )
                if not idle
                else iter(())
            )
            for chunk in chunks:
                # A contact whose account does not exist keeps its last verdict: its account
                # features would all read unknown (sync.orphans).
                orphaned = [i for i in chunk.contacts["contact_id"].to_list() if i in orphan_ids]
                tx = None if dry_run else conn.begin()
                features = chunk.contacts
                if orphaned:
                    summary.orphans += len(orphaned)
                    features = features.filter(~pl.col("contact_id").is_in(list(orphaned)))
                results = mark_erased(evaluate(policy, features, now), erased)
                results = results.with_columns(
                    valid_until(policy, features, results["next_available"], today)
                )
                acc_results = _with_account_horizon(
                    policy,
                    chunk.accounts,
                    results,
                    evaluate_accounts(policy, chunk.accounts, results, now),
                    today,
                )
                frame = pl.concat(
                    [
                        _stage_frame(results, "contact", "contact_id", rule_ids),
                        _stage_frame(acc_results, "account", "account_id", rule_ids),
                    ]
                )
                _load_stage(conn, frame)
                if conn.dialect.name == "postgresql":
                    # a fresh temporary table has no statistics: without them the planner
                    # scans all of evaluations for every chunk instead of probing its key
                    conn.execute(sa.text("ANALYZE eval_stage"))
                _count_transitions(conn, summary)
                if not dry_run:
                    _write(conn, policy, now, run_id)
                summary.contacts += results.height
                summary.accounts += acc_results.height
                if progress is not None:
                    progress("evaluate.contacts", results.height, total)
                for col_frame, et in ((results, "contact"), (acc_results, "account")):
                    for status, n in col_frame["status"].value_counts().iter_rows():
                        summary.statuses[f"{et}.{status}"] += n
                if tx is not None:
                    tx.commit()
            with conn.begin_nested() if dry_run else conn.begin():
                if (
                    dry_run
                    or (summary.incremental and not idle)
                    or (
                        not summary.incremental
                        and _verdicts_on_file(conn) != summary.contacts + summary.accounts
                    )
                ):
                    summary.removed = _remove_gone(conn, scoped=summary.incremental)
                if not dry_run:
                    # the marks read are consumed with the last of the verdicts they caused
                    changes.consume(conn, upto)
                    if inputs_digest is not None:
                        changes.save_inputs_digest(conn, inputs_digest, now)
            # a full run accounts for every live contact; an incremental one only for its scope
            expected = (
                None
                if summary.incremental
                else conn.execute(
                    sa.select(sa.func.count())
                    .select_from(contacts)
                    .where(contacts.c.source == System.SALESFORCE, contacts.c.deleted == sa.false())
                ).scalar_one()
            )
        finally:
            if outer is not None:
                outer.rollback()
            conn.execute(sa.text("DROP TABLE IF EXISTS eval_stage"))
            conn.commit()
    if expected is not None and expected != summary.contacts + summary.orphans:
        msg = (
            f"evaluated {summary.contacts} contacts but the store holds {expected}; "
            "the run is failed rather than truncated (did a sync write at the same time?); "
            "re-run, and report it if it repeats"
        )
        raise StoreError(msg)
    if run is not None:
        run.add("evaluated.contacts", summary.contacts)
        run.add("evaluated.accounts", summary.accounts)
        run.add("evaluation.changed" if not dry_run else "evaluation.would_change", summary.changed)
        if summary.removed:
            run.add("evaluation.removed", summary.removed)
        if not summary.incremental:  # whole-store counts: `status` has them between
            with engine.connect() as conn:
                for kind, n in count_orphans(conn).items():
                    run.add(f"orphans.{kind}", n)
        for key, n in summary.statuses.items():
            run.add(f"status.{key}", n)
    log.info(
        "evaluated %d contacts and %d accounts with policy %s; %d status changes%s",
        summary.contacts,
        summary.accounts,
        policy.version,
        summary.changed,
        " (dry run, nothing written)" if dry_run else "",
    )
    return summary


def _can_be_incremental(conn: Connection, upto: int, inputs_digest: str | None) -> bool:
    """Whether the marks can stand for the changes (else everything is evaluated)."""
    if changes.wants_full(conn, upto):
        return False
    if inputs_digest is not None and changes.saved_inputs_digest(conn) != inputs_digest:
        return False  # another policy or mapping: every verdict may change
    return conn.execute(sa.select(evaluations.c.entity_id).limit(1)).first() is not None


def _with_account_horizon(
    policy: Policy,
    accounts_features: pl.DataFrame,
    contact_results: pl.DataFrame,
    acc_results: pl.DataFrame,
    today: date,
) -> pl.DataFrame:
    """Account verdicts with their ``valid_until``: their own, or a contact's if earlier."""
    if acc_results.height == 0:
        return acc_results.with_columns(pl.lit(None, dtype=pl.Date).alias("valid_until"))
    by_account = contact_results.group_by("account_id").agg(
        pl.col("valid_until").min().alias("_contacts_until")
    )
    features = acc_results.select("account_id").join(accounts_features, on="account_id", how="left")
    own = valid_until(policy, features, acc_results["next_available"], today)
    return (
        acc_results.with_columns(own.alias("valid_until"))
        .join(by_account, on="account_id", how="left")
        .with_columns(pl.min_horizontal("valid_until", "_contacts_until").alias("valid_until"))
        .drop("_contacts_until")
    )


def load_policy_or_last_valid(rules_file: Path, snapshot: Path) -> tuple[Policy, list[str]]:
    """The policy to run with, and the problems of the current file (empty when it is valid).

    A valid file is saved as the last valid policy. An invalid one is reported (the problems
    are returned) and the last valid policy is used instead, so no rule silently disappears.

    Raises:
        PolicyError: when the file is invalid and no valid policy was ever saved.
    """
    try:
        policy = load_policy(rules_file)
    except PolicyError as exc:
        if not snapshot.is_file():
            raise
        last = parse_policy(snapshot.read_text(encoding="utf-8"), str(snapshot))
        for line in exc.problems:
            log.error("rules: %s", line)
        log.error(
            "rules: %s is invalid; still using the last valid policy %s (%s)",
            rules_file,
            last.version,
            last.hash[:12],
        )
        return last, exc.problems
    keep_last_valid(snapshot, policy.source_text)
    return policy, []
