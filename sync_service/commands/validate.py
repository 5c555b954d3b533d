"""``sync-service validate``: check settings, mappings/ and config/rules.yaml before a run.

Offline (default): every file is parsed and checked, and every problem of every file is printed
at once, one ``file:line:col: message`` line each. ``--online`` also asks Salesforce's describe
whether each mapped object and field exists, is readable, has a compatible type, and whether the
writeback fields are updateable (warnings, e.g. formula fields, do not fail the check).

Exit 0 with a one-line summary when all is valid; 2 when anything is not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from canonical.errors import ConfigError, MatchingError, ServiceError, SettingsError
from canonical.model import Entity, System
from rules.literals import policy_literals
from rules.policy import Policy, load_policy
from sync_service.commands.console import error
from sync_service.context import AppContext
from sync_service.factory import build_connector
from sync_service.mapping import Mappings, load_mappings, policy_values
from sync_service.mapping.online import FieldInfo, OnlineReport, validate_online
from sync_service.match.config import MatchingRules
from sync_service.match.config import describe as describe_matching
from sync_service.match.job import load_rules
from sync_service.match.online import check_online as check_matching_online
from sync_service.settings import Settings, config_path_from, resolve_path
from sync_service.store.engine import make_engine

HELP = (
    "check mappings/, config/rules.yaml, config/matching.yaml and settings offline "
    "(--online also asks the CRM)"
)

_LEVEL = {"contact": Entity.CONTACT, "account": Entity.ACCOUNT}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--online",
        action="store_true",
        help="also check the mappings against Salesforce's describe (uses a few API calls)",
    )


@dataclass
class ConfigReport:
    """What :func:`check_configuration` found: every problem of every file, at once."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    settings: Settings | None = None
    mappings: Mappings | None = None
    policy: Policy | None = None
    matching: MatchingRules | None = None

    def raise_if_invalid(self) -> None:
        """Raise the problems as one ConfigError (the CLI prints one line each, exit 2).

        Raises:
            ConfigError: when there is any problem.
        """
        if self.problems:
            raise ConfigError(self.problems[0], problems=list(self.problems))


def check_configuration(ctx: AppContext) -> ConfigReport:
    """Check everything a run needs, offline: settings, mappings, rules and how they fit.

    ``validate`` prints this; ``serve``, ``run-once`` and ``status`` run it at start and refuse
    to start with the same lines, so a configuration ``validate`` passes is one they run.
    """
    report = ConfigReport()
    settings: Settings | None = None
    try:
        settings = ctx.settings
        report.summary.append("settings")
    except SettingsError as exc:
        report.problems.extend(exc.problems)
    report.settings = settings
    if settings is not None:
        mappings_dir, rules_file = settings.mappings_dir, settings.rules_file
    else:  # still check the other files, where the environment or the defaults say they are
        base = config_path_from(ctx.config_path, ctx.env).parent
        mappings_dir = resolve_path(base, Path(ctx.env.get("SYNC_MAPPINGS_DIR") or "../mappings"))
        rules_file = resolve_path(base, Path(ctx.env.get("SYNC_RULES_FILE") or "rules.yaml"))

    if settings is not None and not mappings_dir.is_dir():
        report.problems.append(
            f"{settings.origin('mappings_dir')}: mappings_dir: '{mappings_dir}' is not a folder "
            f"(relative paths are relative to the settings file's folder, {settings.base_dir}/)"
        )
    else:
        try:
            report.mappings = load_mappings(mappings_dir)
            report.summary.append(_describe_mappings(report.mappings))
        except ConfigError as exc:
            report.problems.extend(exc.problems)

    if settings is not None and not rules_file.is_file():
        report.problems.append(
            f"{settings.origin('rules_file')}: rules_file: '{rules_file}' is not a file "
            f"(relative paths are relative to the settings file's folder, {settings.base_dir}/)"
        )
    else:
        policy_problems, policy_summary, report.policy = check_rules(rules_file)
        report.problems.extend(policy_problems)
        if policy_summary:
            report.summary.append(policy_summary)
    if report.policy is not None and report.mappings is not None:
        report.problems.extend(check_policy_features(report.policy, report.mappings, rules_file))

    if settings is not None and settings.matching_file is not None:
        report.problems.extend(check_matching(settings, report))

    mappings = report.mappings
    if (
        settings is not None
        and mappings is not None
        and mappings.gainsight is not None
        and mappings.gainsight.writeback
        and not settings.gainsight.writeback_enabled
    ):
        report.warnings.append(
            f"{mappings.gainsight.where('writeback')}: Gainsight writeback is mapped but "
            "gainsight.writeback_enabled is false; nothing is written to Gainsight"
        )
    return report


def preflight(ctx: AppContext) -> ConfigReport:
    """The start of ``serve`` and ``run-once``: refuse to start on any problem ``validate`` sees.

    Raises:
        ConfigError: every problem at once (exit 2), the same lines ``validate`` prints.
    """
    report = check_configuration(ctx)
    report.raise_if_invalid()
    return report


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Validate everything, print every problem, return 0 (valid) or 2 (not)."""
    report = check_configuration(ctx)
    problems, warnings, summary = report.problems, report.warnings, report.summary
    settings, mappings = report.settings, report.mappings
    if report.policy is not None and settings is not None:
        # validate only (not every command's start): it reads the store's distinct values
        warnings.extend(check_stored_values(report.policy, settings))

    if getattr(args, "online", False):
        if problems:
            warnings.append("--online skipped: fix the problems above first")
        elif settings is not None and mappings is not None:
            online = check_online(settings, mappings, report.policy, report.matching)
            problems.extend(online.problems)
            warnings.extend(online.warnings)
            if not online.problems:
                summary.append("Salesforce schema (online)")

    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    if problems:
        for line in problems:
            error(line)
        print(
            f"{len(problems)} problem(s) found; nothing running was changed. "
            "Fix them and run `sync-service validate` again.",
            file=sys.stderr,
        )
        return 2
    print("OK: " + "; ".join(summary) + " valid")
    return 0


def _describe_mappings(mappings: Mappings) -> str:
    parts = []
    for source in mappings.sources:
        parts.append(
            f"{source.system} {len(source.entities)} entities, "
            f"{len(source.writeback)} writeback targets"
        )
    return f"mappings ({'; '.join(parts)})" if parts else "mappings"


def check_matching(settings: Settings, report: ConfigReport) -> list[str]:
    """Problems of ``config/matching.yaml`` (its terms checked against the mapped fields)."""
    assert settings.matching_file is not None
    if not settings.matching_file.is_file():
        return [
            f"{settings.origin('matching_file')}: matching_file: '{settings.matching_file}' is "
            f"not a file (relative paths are relative to the settings file's folder, "
            f"{settings.base_dir}/)"
        ]
    try:
        report.matching = load_rules(settings, report.mappings)
    except MatchingError as exc:
        return list(exc.problems)
    if report.matching is not None:
        report.summary.append(describe_matching(report.matching))
    return []


def check_rules(rules_file: Path) -> tuple[list[str], str | None, Policy | None]:
    """Validate the rules file with the ``rules`` package's loader.

    Returns:
        (problems, summary, policy): the policy when valid.
    """
    try:
        policy = load_policy(rules_file)
    except ConfigError as exc:
        return list(exc.problems), None, None
    return [], f"rules (version {policy.version})", policy


def check_policy_features(policy: Policy, mappings: Mappings, rules_file: Path) -> list[str]:
    """Problems with the policy's features taken from ``extra``.

    Each must be an extra field the mappings declare, on the same entity, with the same type.
    """
    problems: list[str] = []
    declared = mappings.extra_features()
    by_crm_field = {
        f.crm_field: f.name
        for s in mappings.sources
        for em in s.entities.values()
        for f in em.extra_fields
    }
    for name, spec in policy.required_features().items():
        key = spec.extra
        if key is None:
            continue
        where = f"{rules_file}: features.{name}"
        found = declared.get(key)
        if found is None:
            if key in by_crm_field:
                problems.append(
                    f"{where}: '{key}' is the CRM field; the mappings store it in extra as "
                    f"'{by_crm_field[key]}': write extra: {by_crm_field[key]}"
                )
            else:
                problems.append(
                    f"{where}: extra '{key}' is not mapped; declare it under "
                    f"entities.<entity>.extra in {mappings.path}/salesforce.yaml "
                    "(or gainsight.yaml)"
                )
            continue
        entity, ftype = found
        level = spec.level
        if _LEVEL[level] is not entity:
            problems.append(
                f"{where}: extra '{key}' is mapped on {entity.value}, not on {level}s; "
                f"set entity: {'account' if entity is Entity.ACCOUNT else 'contact'}"
            )
        if spec.type != ftype:
            problems.append(
                f"{where}: extra '{key}' is mapped as {ftype}; declare the feature as {ftype}"
            )
    return problems


def check_stored_values(policy: Policy, settings: Settings) -> list[str]:
    """Warnings for the policy's picklist literals that no stored row holds.

    Only an existing, migrated store is read (validate never creates one).
    """
    url = sa.engine.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return []
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("evaluations"):
                return []
            return policy_values.check_stored(policy_literals(policy), conn)
    except sa.exc.SQLAlchemyError as exc:  # a store out of reach is not a config problem
        return [f"store: cannot compare the rules' values with stored rows ({exc.code or exc})"]
    finally:
        engine.dispose()


def check_online(
    settings: Settings,
    mappings: Mappings,
    policy: Policy | None = None,
    matching: MatchingRules | None = None,
) -> OnlineReport:
    """Check the Salesforce mapping against the org's describe (Gainsight: offline only).

    With a policy, its picklist literals (cap filters, ``=`` / ``IN`` on picklist features)
    are checked against the org's picklist values too.
    """
    report = OnlineReport()
    if mappings.salesforce is None:
        return report
    if not settings.salesforce.enabled:
        report.warnings.append("salesforce is disabled in the settings; online check skipped")
        return report
    connector = build_connector(settings, System.SALESFORCE)
    describe_object: Any = getattr(connector, "describe", None)
    if describe_object is None:
        connector.close()
        report.warnings.append("salesforce: this connector cannot describe objects; skipped")
        return report

    def describe(name: str) -> Mapping[str, FieldInfo]:
        fields: Mapping[str, FieldInfo] = describe_object(name).fields
        return fields

    try:
        result = validate_online(mappings.salesforce, describe)
        if policy is not None:
            literals = policy_literals(policy)
            result.problems.extend(
                policy_values.check_online(literals, mappings.salesforce, describe)
            )
        if matching is not None:
            result.problems.extend(check_matching_online(matching, mappings.salesforce, describe))
    except ServiceError as exc:  # auth, network, budget: one line, not one per object
        report.problems.append(f"salesforce: cannot check online: {exc}")
        return report
    finally:
        connector.close()
    report.problems.extend(result.problems)
    report.warnings.extend(result.warnings)
    if mappings.gainsight is not None:
        report.warnings.append(
            f"{mappings.gainsight.path}: Gainsight has no describe check yet; checked offline only"
        )
    return report
