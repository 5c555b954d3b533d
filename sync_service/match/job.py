"""The match stage as a job: rules from the settings, the target from the mappings, then apply.

:func:`run_match` is what the pipeline's ``match`` step calls (after the evaluation and the
writeback); it ranks every open deal (:func:`~sync_service.match.stage.match_all`) and sends
the changed suggestion texts to the CRM through the writeback's outbox and apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from canonical.errors import MatchingError
from canonical.model import Entity, FieldType, System
from canonical.yaml import keep_last_valid
from connectors.base import Connector
from sync_service.mapping import Mappings, WritebackTarget
from sync_service.match.config import MatchingRules, load_matching, parse_matching
from sync_service.match.stage import MatchCounts, match_all
from sync_service.ops.runs import Run
from sync_service.settings import Settings
from sync_service.writeback.apply import apply_configured
from sync_service.writeback.report import WritebackReport

log = logging.getLogger(__name__)

#: The last valid matching file, in the service's var folder (beside ``rules.last-valid.yaml``).
SNAPSHOT_NAME = "matching.last-valid.yaml"


def account_extras(mappings: Mappings | None) -> dict[str, FieldType]:
    """The account fields mapped as ``extra`` (name -> type).

    What a term may name besides the canonical account columns.
    """
    if mappings is None:
        return {}
    return {
        name: ftype
        for name, (entity, ftype) in mappings.extra_features().items()
        if entity is Entity.ACCOUNT
    }


def load_rules(settings: Settings, mappings: Mappings | None) -> MatchingRules | None:
    """The matching rules (None: ``matching_file`` not set, matching is off).

    Raises:
        MatchingError: the file is invalid (every problem, ``file:line:col``).
    """
    if settings.matching_file is None:
        return None
    return load_matching(settings.matching_file, account_extras(mappings))


def load_rules_or_last_valid(
    settings: Settings, mappings: Mappings | None, snapshot: Path
) -> tuple[MatchingRules | None, list[str]]:
    """The rules to match with, and the problems of the current file (empty when it is valid).

    As the policy does: a valid file is saved as ``snapshot``; an invalid edit is reported
    (every problem, ``file:line:col``) and the last valid rules keep matching, so a typo in
    ``config/matching.yaml`` neither stops the suggestions nor clears them. The snapshot is
    validated again against today's mappings (a term may name a field since unmapped).

    Raises:
        MatchingError: the file is invalid and no valid version was ever saved (or the saved
            one no longer validates); the current file's problems.
    """
    try:
        rules = load_rules(settings, mappings)
    except MatchingError as exc:
        if not snapshot.is_file():
            raise
        try:
            last = parse_matching(
                snapshot.read_text(encoding="utf-8"), account_extras(mappings), str(snapshot)
            )
        except MatchingError:
            raise exc from None
        for line in exc.problems:
            log.error("matching: %s", line)
        log.error(
            "matching: %s is invalid; still matching with the last valid rules (%s)",
            settings.matching_file,
            last.hash[:12],
        )
        return last, exc.problems
    if rules is not None:
        keep_last_valid(snapshot, rules.source_text)
    return rules, []


def suggestion_target(settings: Settings, mappings: Mappings | None) -> WritebackTarget | None:
    """The Opportunity field receiving the suggestions (None: not mapped, or no writeback)."""
    if mappings is None or mappings.salesforce is None:
        return None
    if not settings.salesforce.enabled or not settings.writeback.enabled:
        return None
    return mappings.salesforce.writeback_for("opportunity")


def run_match(
    engine: Engine,
    settings: Settings,
    mappings: Mappings | None,
    *,
    run: Run,
    connector_factory: Callable[[], Connector],
    now: Callable[[], datetime],
    snapshot: Path,
) -> MatchCounts | None:
    """Rank, store, queue and send the suggestions; figures go to ``run``.

    Returns None when matching is off. An invalid matching file is reported in the run
    (``config_errors``, ``file:line:col``) and the last valid rules, kept at ``snapshot``,
    match instead (see :func:`load_rules_or_last_valid`).

    Raises:
        MatchingError: the matching file is invalid and no valid version was ever seen.
    """
    try:
        rules, problems = load_rules_or_last_valid(settings, mappings, snapshot)
    except MatchingError as exc:
        run.config_errors.extend(exc.problems)
        raise
    run.config_errors.extend(problems)
    if rules is None:
        run.counts["skipped"] = 1
        run.error = "matching_file is not set; no reference matching"
        return None
    target = suggestion_target(settings, mappings)
    counts = match_all(
        engine,
        rules,
        target=target,
        now=now(),
        run_id=run.id,
        batch_size=max(1000, settings.sync.batch_size),
    )
    for key, n in counts.as_counts().items():
        run.counts[key] = n
    if target is None:
        return counts
    connector = connector_factory()
    try:
        report = WritebackReport(dry_run=False)
        apply_configured(
            engine,
            connector,
            target,
            settings.writeback,
            report=report,
            run_id=run.id,
            now=now,
            sleep=time.sleep,
        )
        run.counts["written"] = report.counts["success"]
        run.counts["write_failed"] = report.counts["failed"]
        if report.stopped:
            run.mark_partial(report.stopped)
    finally:
        run.api_calls[System.SALESFORCE.value] = _usage(connector)
        connector.close()
    return counts


def _usage(connector: Connector) -> dict[str, int | None]:
    usage = connector.usage()
    return {"calls": usage.calls, "used": usage.used, "limit": usage.limit}
