"""Which streams hold a complete picture, and which verdicts a gap must hold back.

Invariant 8: a stage consumes only complete inputs. The rule, per stream:

* A sync of a stream **marks it incomplete when it starts** (``sync_state.incomplete_since``,
  committed before the first batch) and **clears the mark when it finishes**. A stream that stops
  short for any reason -- the API budget spent, retries exhausted on 5xx, a shutdown, a CRM error
  on that stream, or the process killed outright -- keeps the mark, with the reason when there
  was a chance to write one. The next complete sync of the stream clears it.
* Granularity: a stream feeds one canonical table; a table with a marked stream is a **gap**.
  Every verdict reads ``contacts``, ``accounts`` (a contact's rules see its account's features;
  an account's status comes from its contacts) and ``advocacy_asks`` (fatigue), plus the tables
  of the features the policy declares (``nps_*`` -> ``nps_responses``, ticket features ->
  ``tickets``, renewal features -> ``opportunities``). Which rows a partial read missed is
  unknowable -- anything changed after its cursor -- so a gap in a table the policy reads holds
  *every* verdict: nothing is evaluated, each contact and account keeps its last verdict, and
  nothing is written for them. A gap in a table the policy does not read (say ``opportunities``
  when no renewal feature is declared) holds nothing: everyone is evaluated as usual.
* Only streams of the current mappings count: a stream removed from a mapping no longer gates.

A mark alone does not say whether its sync is still running or stopped short, so an evaluation
looks at who holds the sync's stage lock (``stage.<source>``; ``stage.asks`` for the asks
stream) -- see :func:`classify`:

* **Finished gap** -- the sync that marked the stream has ended (failed, stopped short, shut
  down, killed -- including a first load that never completed): the evaluation is **held** as
  above (the run is partial, says which stream and why, and the alert fires).
* **Running** -- a sync is writing the stream now (on PostgreSQL ``serve`` runs the Salesforce
  and Gainsight syncs side by side, so the follow-up evaluation of the one that ends first meets
  the other one running). Nothing is wrong: the evaluation **waits for that sync to commit**,
  then looks again and evaluates the complete data (or holds, if that sync left a gap). It cannot
  evaluate on "the last complete data" instead: a running sync commits its batches into the same
  tables, so that picture no longer exists. The wait is bounded
  (``pipeline.RUNNING_SYNC_WAIT``) and ends at shutdown; if the sync is still running then, the
  evaluation is **deferred** (not held, no alert): the run evaluates nothing, says which sync it
  left the work to, and the follow-up evaluation of that sync evaluates once it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.model import Entity, System
from rules import catalogue
from rules.policy import Policy
from sync_service.ops.locks import STAGE_PREFIX, held_elsewhere
from sync_service.ops.runs import Run, utcnow
from sync_service.store.models import accounts, contacts, sync_state
from sync_service.store.upsert import upsert

#: What a sync that has started and not finished says until it says more.
STARTED = "its last sync started and did not finish (stopped or killed)"

#: Tables every verdict reads, whatever the policy declares.
ALWAYS_READ = frozenset({Entity.CONTACT, Entity.ACCOUNT, Entity.ASK})


@dataclass(frozen=True)
class Gap:
    """A stream whose last sync did not finish."""

    connector: str
    stream: str
    entity: str
    since: datetime
    reason: str

    def describe(self) -> str:
        """One line: which stream, since when, and why."""
        when = f"{self.since:%Y-%m-%d %H:%M} UTC"
        return f"{self.connector}.{self.stream} ({self.entity}) since {when}: {self.reason}"


def mark_started(conn: Connection, connector: str, stream: str, entity: str) -> None:
    """Mark a stream incomplete as its sync starts (the caller commits before reading)."""
    now = utcnow()
    upsert(
        conn,
        sync_state,
        [
            {
                "connector": connector,
                "stream": stream,
                "entity": entity,
                "incomplete_since": now,
                "incomplete_reason": STARTED,
                "updated_at": now,
            }
        ],
    )


def mark_reason(engine: Engine, connector: str, stream: str, reason: str) -> None:
    """Say why a stream stopped short (its incomplete mark stays)."""
    with engine.begin() as conn:
        conn.execute(
            sync_state.update()
            .where(
                sync_state.c.connector == connector,
                sync_state.c.stream == stream,
                sync_state.c.incomplete_since.is_not(None),
            )
            .values(incomplete_reason=reason[:2000], updated_at=utcnow())
        )


#: The values that clear a stream's incomplete mark (merged into its final state update).
COMPLETE = {"incomplete_since": None, "incomplete_reason": None}


def gaps(engine: Engine, streams: Iterable[tuple[str, str]] | None = None) -> list[Gap]:
    """Streams whose last sync did not finish, oldest first.

    Args:
        engine: the store.
        streams: ``(connector, stream)`` of the current mappings; None: every stream on file.
    """
    wanted = set(streams) if streams is not None else None
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                sync_state.c.connector,
                sync_state.c.stream,
                sync_state.c.entity,
                sync_state.c.incomplete_since,
                sync_state.c.incomplete_reason,
            )
            .where(sync_state.c.incomplete_since.is_not(None))
            .order_by(sync_state.c.incomplete_since)
        ).all()
    return [
        Gap(r.connector, r.stream, r.entity or "", r.incomplete_since, r.incomplete_reason or "")
        for r in rows
        if wanted is None or (r.connector, r.stream) in wanted
    ]


def sync_stages(gap: Gap) -> set[str]:
    """The stage locks held by a sync that may write ``gap``'s stream while it runs."""
    stages = {f"{STAGE_PREFIX}{gap.connector}"}
    if gap.connector == System.SALESFORCE and gap.entity == str(Entity.ASK):
        stages.add(f"{STAGE_PREFIX}asks")  # the frequent asks job syncs that stream alone
    return stages


def classify(
    engine: Engine, streams: Iterable[tuple[str, str]] | None = None
) -> tuple[list[Gap], list[Gap]]:
    """Split the gaps into those a finished sync left and those a running sync is filling.

    Returns:
        ``(finished, running)``. The marks are read before and after the locks are looked at:
        a gap counts as finished only if its mark did not move meanwhile (a sync starting
        re-marks its streams with a new time) and no sync that writes it held its lock, so a
        sync that starts or ends during the look is never taken for a dead one.
    """
    wanted = list(streams) if streams is not None else None
    first = gaps(engine, wanted)
    if not first:
        return [], []
    before = {(g.connector, g.stream): g.since for g in first}
    stages: set[str] = set().union(*(sync_stages(g) for g in first))
    busy = {stage for stage in stages if held_elsewhere(engine, stage)}
    finished: list[Gap] = []
    running: list[Gap] = []
    for gap in gaps(engine, wanted):
        moved = before.get((gap.connector, gap.stream)) != gap.since
        (running if moved or sync_stages(gap) & busy else finished).append(gap)
    return finished, running


def tables_read(policy: Policy) -> set[str]:
    """The canonical tables a policy's verdicts depend on."""
    tables = {str(e) for e in ALWAYS_READ}
    for name, spec in policy.required_features().items():
        if spec.extra is not None:
            tables.add(str(Entity.ACCOUNT if spec.level == "account" else Entity.CONTACT))
            continue
        tables.update(str(e) for e in feature_tables(name))
    return tables


def feature_tables(name: str) -> set[Entity]:
    """The canonical tables one catalogue feature is computed from."""
    if name.startswith(("nps_", "account_nps_")):
        return {Entity.NPS_RESPONSE, Entity.CONTACT}
    if "ticket" in name or "escalation" in name or catalogue.pattern_params(name).get("priority"):
        return {Entity.TICKET}
    if "renewal" in name:
        return {Entity.OPPORTUNITY}
    if "ask" in name:
        return {Entity.ASK}
    info = catalogue.lookup(name)
    if info is not None and info.level == "account":
        return {Entity.ACCOUNT}
    return {Entity.CONTACT}


def blocking(policy: Policy, found: Iterable[Gap]) -> list[Gap]:
    """The gaps that hold the policy's verdicts (those in a table it reads)."""
    read = tables_read(policy)
    return [g for g in found if not g.entity or g.entity in read]


#: The run counter that says an evaluation held every verdict for incomplete inputs.
HELD_KEY = "held.incomplete_inputs"


def hold(conn: Connection, run: Run, found: list[Gap]) -> str:
    """Record in ``run`` that ``found`` held every verdict; return the one-line reason."""
    live_contacts = conn.execute(
        sa.select(sa.func.count())
        .select_from(contacts)
        .where(contacts.c.source == "salesforce", contacts.c.deleted == sa.false())
    ).scalar_one()
    live_accounts = conn.execute(
        sa.select(sa.func.count())
        .select_from(accounts)
        .where(accounts.c.source == "salesforce", accounts.c.deleted == sa.false())
    ).scalar_one()
    run.add(HELD_KEY, len(found))
    run.add("held.contacts", int(live_contacts))
    run.add("held.accounts", int(live_accounts))
    names = ", ".join(f"{g.connector}.{g.stream}" for g in found)
    reason = (
        f"inputs incomplete: the last sync of {names} did not finish ({found[0].reason}); "
        "every contact and account keeps its last verdict and nothing is written for them "
        "until a complete sync"
    )
    run.mark_partial(reason)
    return reason


#: The run counter that says an evaluation left its work to a sync still running.
DEFERRED_KEY = "deferred.running_sync"

#: The run counter that says an evaluation waited for a running sync before it evaluated.
WAITED_KEY = "waited.running_sync"


def defer(run: Run, running: list[Gap]) -> str:
    """Record in ``run`` that it evaluates nothing: ``running`` syncs are still filling its inputs.

    Not a hold (no partial status, no alert): nothing is wrong, and the follow-up evaluation of
    each running sync evaluates once it commits.
    """
    run.add(DEFERRED_KEY, len(running))
    names = ", ".join(f"{g.connector}.{g.stream}" for g in running)
    run.error = (
        f"deferred: the sync of {names} is still running; every contact and account keeps its "
        "last verdict, and the evaluation that follows that sync evaluates once it commits"
    )
    return run.error
