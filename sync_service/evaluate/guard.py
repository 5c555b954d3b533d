"""The guard over the store: check an ask, or log it, for one contact, in a few index lookups.

A check reads the contact (by Salesforce id or email) with its consents, its latest verdict and
the asks of the contact and its account inside the longest cap window, and hands them to
:func:`rules.guard.decide`: a recount of one contact's asks and a look at its consent, not a
re-evaluation.

Logging an ask is the same decision and the insert in one transaction, serialised per account
(per contact when it has none), so the second of two simultaneous asks that together would
break a cap sees the first and is refused:

* PostgreSQL: ``pg_advisory_xact_lock`` on a key derived from the account id, taken before the
  asks are read and released by the commit;
* SQLite: ``BEGIN IMMEDIATE`` takes the database's writer lock before the asks are read.

A logged ask is in ``advocacy_asks`` at once (source ``api``; the evaluation counts it too) and
has a ``create`` row in the writeback outbox in the same transaction, so it reaches the CRM
exactly once whenever the CRM is reachable (see :mod:`sync_service.writeback.asks`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.errors import InputError
from canonical.sfid import to18
from rules import Policy, today_for
from rules.guard import (
    CLEAR,
    OVERRIDE,
    CapCount,
    Decision,
    LedgerAsk,
    Verdict,
    decide,
    recount,
    window_start,
)
from sync_service.evaluate.ask_audit import AuditRow, AuditSink
from sync_service.mapping.asks import AskFields
from sync_service.store.ledger import (
    ContactRow,
    ask_rows,
    asks_around,
    find_contact,
    opportunity_exists,
)
from sync_service.store.models import advocacy_asks
from sync_service.sync import changes
from sync_service.writeback.outbox import CREATE, queue

SALESFORCE = "salesforce"
#: ``advocacy_asks.source`` of asks logged through the guard, until the CRM has them.
SOURCE_API = "api"
#: Logged asks start as requested (the CRM's Status__c picklist value).
REQUESTED = "Requested"
_LOCK_NAMESPACE = "advocate-sync:guard:"


@dataclass(frozen=True)
class Caller:
    """Who asks: the token's name and team (None for admin tokens and the CLI)."""

    token_name: str | None
    team: str | None


@dataclass(frozen=True)
class AskTarget:
    """The contact (by Salesforce id or email), the ask proposed and the deal it serves."""

    contact: str
    ask_type: str
    team: str | None
    #: The Salesforce opportunity the ask is for (a sales reference), or None.
    opportunity_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A decision about one contact, with the ids it was made for."""

    decision: Decision
    contact_id: str
    account_id: str | None
    ask_id: str | None = None
    overridden: bool = False
    #: The opportunity a logged ask is linked to (18 characters), or None.
    opportunity_id: str | None = None


def ledger(rows: list[Any]) -> list[LedgerAsk]:
    """Store rows of asks as the guard counts them."""
    return [LedgerAsk(r.ask_type, r.team, r.requested_date) for r in rows]


def ask_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    """Store rows of asks, JSON-ready."""
    return [
        {
            "id": r.id,
            "source": r.source,
            "contact_id": r.contact_id,
            "ask_type": r.ask_type,
            "team": r.team,
            "status": r.status,
            "requested_date": r.requested_date.isoformat() if r.requested_date else None,
            "opportunity_id": r.opportunity_id,
        }
        for r in rows
    ]


def decide_for(
    conn: Connection,
    policy: Policy,
    contact: ContactRow,
    ask_type: str,
    team: str | None,
    today: date,
) -> Decision:
    """Read the asks that can count for one contact (and its account) and decide."""
    verdict = (
        Verdict(contact.status, contact.reason, contact.next_available)
        if contact.status is not None
        else None
    )
    account = contact.account_id if any(c.scope == "account" for c in policy.caps) else None
    since = min(window_start(policy, today, "contact"), window_start(policy, today, "account"))
    rows = asks_around(conn, contact.id, account, since)
    mine = ledger([r for r in rows if r.contact_id == contact.id])
    theirs = ledger([r for r in rows if account is not None and r.account_id == account])
    return decide(policy, verdict, mine, theirs, ask_type, team, today, contact.consent_types)


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (namespaced, stable across processes)."""
    digest = hashlib.sha256((_LOCK_NAMESPACE + name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _serialise(conn: Connection, name: str) -> None:
    """Take the per-account write lock for the rest of the transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(name))))
    elif conn.dialect.name == "sqlite":
        # pysqlite opens transactions lazily (at the first write); open it now, as the writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Guard:
    """Checks and logs asks against the store; shared by the API, the CLI and the bench.

    Args:
        engine: the store.
        policy: returns the policy to apply (the API reloads it when the file changes).
        fields: where logged asks go in the CRM (None: the store only, nothing sent).
        audit: where every check and ask is recorded.
        now: the clock.
    """

    def __init__(
        self,
        engine: Engine,
        policy: Callable[[], Policy],
        fields: AskFields | None,
        audit: AuditSink,
        now: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.fields = fields
        self.audit = audit
        self.now = now

    def decide(self, target: AskTarget) -> Outcome | None:
        """Decide without logging or auditing; None when no such contact."""
        policy = self.policy()
        today = today_for(policy, self.now())
        with self.engine.connect() as conn:
            found = find_contact(conn, target.contact)
            if found is None:
                return None
            decision = decide_for(conn, policy, found, target.ask_type, target.team, today)
        return Outcome(decision, found.id, found.account_id)

    def check(self, who: Caller, target: AskTarget) -> Outcome | None:
        """Decide without logging; None when no such contact. Audited (buffered)."""
        outcome = self.decide(target)
        if outcome is None:
            # No contact id to file it under (and never the email): the attempt still counts.
            self.audit.add(AuditRow.of(self.now(), "check", "not_found", who, target, None, None))
            return None
        self.audit.add(
            AuditRow.of(
                self.now(),
                "check",
                "allowed" if outcome.decision.allowed else "refused",
                who,
                target,
                outcome.contact_id,
                outcome.account_id,
                reasons=outcome.decision.reasons,
            )
        )
        return outcome

    def log(
        self,
        who: Caller,
        target: AskTarget,
        requested_by: str,
        override_reason: str | None = None,
    ) -> Outcome | None:
        """Decide and, when allowed or overridden, log the ask; None when no such contact.

        The decision and the insert share one transaction under the account's lock.

        Raises:
            InputError: the target names an opportunity the store does not hold.
        """
        policy = self.policy()
        now = self.now()
        today = today_for(policy, now)
        if target.opportunity_id is not None:
            target = replace(target, opportunity_id=to18(target.opportunity_id))
        with self.engine.connect() as conn:
            if target.opportunity_id is not None and not opportunity_exists(
                conn, target.opportunity_id
            ):
                # Checked before the contact, so a refused link costs no audit row: nothing
                # was decided about anyone.
                msg = (
                    f"no opportunity {target.opportunity_id} in the store "
                    "(synced opportunities only; check the id or wait for the next sync)"
                )
                raise InputError(msg, opportunity_id=target.opportunity_id)
            found = find_contact(conn, target.contact)
            if found is None:
                self.audit.add(
                    AuditRow.of(
                        now, "ask", "not_found", who, target, None, None, requested_by=requested_by
                    )
                )
                return None
            contact_id, account_id = found.id, found.account_id
            conn.rollback()  # the lookup's read transaction; the locked one starts below
            _serialise(conn, account_id or contact_id)
            # Read again under the lock: the verdict and the asks as they stand now.
            found = find_contact(conn, contact_id) or found
            decision = decide_for(conn, policy, found, target.ask_type, target.team, today)
            overridden = not decision.allowed and bool(override_reason)
            ask_id: str | None = None
            result = "refused"
            if decision.allowed or overridden:
                ask_id = f"ask-{uuid.uuid4().hex}"
                result = "override" if overridden else "logged"
                self._insert(
                    conn,
                    ask_id,
                    contact_id,
                    account_id,
                    target,
                    today,
                    now,
                    decision,
                    requested_by,
                    override_reason if overridden else None,
                )
            self.audit.write(
                conn,
                AuditRow.of(
                    now,
                    "ask",
                    result,
                    who,
                    target,
                    contact_id,
                    account_id,
                    reasons=decision.reasons,
                    ask_id=ask_id,
                    requested_by=requested_by,
                    override_reason=override_reason if overridden else None,
                    broken=decision.broken if overridden else None,
                ),
            )
            conn.commit()
        linked = target.opportunity_id if ask_id is not None else None
        return Outcome(decision, contact_id, account_id, ask_id, overridden, linked)

    def _insert(
        self,
        conn: Connection,
        ask_id: str,
        contact_id: str,
        account_id: str | None,
        target: AskTarget,
        today: date,
        now: datetime,
        decision: Decision,
        requested_by: str,
        override_reason: str | None,
    ) -> None:
        guard_status = OVERRIDE if override_reason else CLEAR
        guard_reason = (
            f"override by {requested_by}: {override_reason} (breaks {', '.join(decision.broken)})"
            if override_reason
            else "checked by the guard"
        )[:255]
        row = {
            "source": SOURCE_API,
            "id": ask_id,
            "contact_id": contact_id,
            "account_id": account_id,
            "ask_type": target.ask_type,
            "status": REQUESTED,
            "requested_date": today,
            "team": target.team,
            "opportunity_id": target.opportunity_id,
            "source_updated_at": now,
            "deleted": False,
            "extra": {
                "guard_ask_id": ask_id,
                "guard_status": guard_status,
                "guard_reason": guard_reason,
                "requested_by": requested_by,
            },
            "synced_at": now,
        }
        conn.execute(sa.insert(advocacy_asks), [row])
        # the contact's and account's verdicts change with it: marked in the ask's transaction
        mark = {"source": SOURCE_API, "entity": advocacy_asks.name, "id": ask_id}
        changes.write_marks(conn, [{**mark, "account_id": None, "marked_at": now}])
        if self.fields is not None:
            queue(
                conn,
                target=SALESFORCE,
                object_name=self.fields.object_name,
                record_id=ask_id,
                fields=self.fields.create_fields(row),
                operation=CREATE,
                now=now,
            )

    def account_caps(self, account_id: str) -> list[CapCount]:
        """The account-scope caps recounted now for an account (the advocate view)."""
        policy = self.policy()
        today = today_for(policy, self.now())
        since = window_start(policy, today, "account")
        with self.engine.connect() as conn:
            asks = ledger(ask_rows(conn, "account_id", account_id, since))
        return [recount(c, asks, today, None, None) for c in policy.caps if c.scope == "account"]

    def advocate_asks(self, contact_id: str | None, account_id: str | None) -> list[dict[str, Any]]:
        """The asks that count now for a contact (or an account): for the advocate view."""
        policy = self.policy()
        today = today_for(policy, self.now())
        column, key = ("contact_id", contact_id) if contact_id else ("account_id", account_id)
        scope = "contact" if contact_id else "account"
        with self.engine.connect() as conn:
            return ask_dicts(ask_rows(conn, column, str(key), window_start(policy, today, scope)))
