"""Deterministic, skewed seed data for both systems, generated fast enough for 1M contacts.

Everything comes from ``random.Random(seed)`` (Gainsight from its own stream) and a reference
time ``now``: the same seed and ``now`` give the same org. Every timestamp is at or before
``now``. Picks use ``int(r() * n)`` on precomputed weighted lists rather than
``random.choice``/``choices``: at a million rows the difference is the difference between
seconds and a minute. The word lists and weights are data (``sandbox/data/seed_words.json``,
see ``sandbox.seed.words``); each object has its own function in ``sandbox.seed.salesforce``
or ``sandbox.seed.gainsight``, and ``seed`` calls them in a fixed order.

Shapes worth knowing (tests and the demo lean on them):

- accounts spread over industries, regions (NA > EMEA > APAC > LATAM) and segments; enterprise
  accounts have more contacts (about 5 an account overall), more cases and higher opt-in;
- a few percent of contacts are "visible" advocates that take most of the asks in
  ``Reference_Request__c``; some contacts opted in, a few later opted out (withdrawal);
- open escalated or long-open High-priority cases, renewals at High risk, overdue payments and
  churn risk on a few percent of accounts (suspension signals);
- Gainsight companies carry ``SfdcAccountId`` except a few; people's emails vary in case and
  whitespace, some are duplicated, most carry ``SfdcContactId``; NPS answers over two years with a
  promoter/passive/detractor mix that follows the company's health.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox.seed.gainsight import seed_gainsight
from sandbox.seed.salesforce import (
    seed_accounts,
    seed_asks,
    seed_cases,
    seed_contacts,
    seed_opportunities,
)
from sandbox.seed.tools import Clock, Draw
from sandbox.seed.words import load_words
from sandbox.store import GAINSIGHT, SandboxStore, gainsight_path

__all__ = [
    "DEFAULT_CONTACTS_PER_ACCOUNT",
    "PARALLEL_MIN_ACCOUNTS",
    "SEED_VERSION",
    "SeedSummary",
    "seed",
]

DEFAULT_CONTACTS_PER_ACCOUNT = 5
#: Bump whenever the generated data or the schema changes: it keys the seed cache.
#: 7: the guard fields on Reference_Request__c; 8: consent and engagement fields; 9: sales
#: reference calls linked to a prospect's opportunity (Reference_Request__c.Opportunity__c);
#: 10: regional industries (reference matching) and Opportunity.Suggested_References__c.
SEED_VERSION = 10
PARALLEL_MIN_ACCOUNTS = 20_000


@dataclass
class SeedSummary:
    """How many rows of each object were made."""

    counts: dict[str, int]


def seed(
    store: SandboxStore,
    *,
    accounts: int,
    seed: int,
    now: dt.datetime,
    contacts_per_account: int = DEFAULT_CONTACTS_PER_ACCOUNT,
    progress: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> SeedSummary:
    """Fill ``store`` (and its Gainsight file, attached at the end) with a deterministic org.

    ``parallel`` seeds Gainsight in a forked process (default: for orgs of
    ``PARALLEL_MIN_ACCOUNTS`` accounts or more, where it saves a third of the time).
    """
    clock = Clock(now)
    draw = Draw(random.Random(seed).random, clock)
    words = load_words()
    scale = contacts_per_account / DEFAULT_CONTACTS_PER_ACCOUNT
    counts: dict[str, int] = {}

    seeded_accounts = seed_accounts(store, draw, words, accounts)
    counts["Account"] = len(seeded_accounts.ids)
    if progress:
        progress(f"accounts: {accounts:,}")
    contacts = seed_contacts(store, draw, words, seeded_accounts, scale)
    counts["Contact"] = len(contacts.ids)
    if progress:
        progress(f"contacts: {len(contacts.ids):,}")

    # Gainsight needs only the accounts and contacts: a big org seeds it in a second process
    # (its own file) while this one carries on with Salesforce.
    fill_gainsight = functools.partial(
        seed_gainsight,
        seed=seed,
        clock=clock,
        words=words,
        accounts=seeded_accounts,
        contacts=contacts,
    )
    gs_path = gainsight_path(store.path)
    child = None
    if parallel if parallel is not None else accounts >= PARALLEL_MIN_ACCOUNTS:
        child = multiprocessing.get_context("fork").Process(
            target=_write_gainsight, args=(fill_gainsight, gs_path), daemon=True
        )
        child.start()

    counts["Opportunity"] = seed_opportunities(store, draw, words, seeded_accounts)
    counts["Case"] = seed_cases(store, draw, words, seeded_accounts, contacts, scale)
    counts["Reference_Request__c"] = seed_asks(store, draw, words, seeded_accounts, contacts)
    if progress:
        progress("salesforce done")

    store.create_indexes()
    if child is None:
        _write_gainsight(fill_gainsight, gs_path)
    else:
        child.join()
        if child.exitcode != 0:
            msg = f"seeding Gainsight failed in the child process (exit code {child.exitcode})"
            raise RuntimeError(msg)
    store.attach_gainsight()
    for obj in store.schemas[GAINSIGHT]:
        counts[obj] = int(store.fetchone(f"SELECT COUNT(*) FROM {store.table(GAINSIGHT, obj)}")[0])
    if progress:
        progress("gainsight done")
    return SeedSummary(counts)


def _write_gainsight(fill: Callable[[SandboxStore], None], path: Path) -> None:
    """Make the Gainsight file at ``path`` and fill it."""
    gs = SandboxStore(path, systems=(GAINSIGHT,))
    try:
        fill(gs)
        gs.create_indexes()
    finally:
        gs.close()
