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
from pathlib import Path
from typing import Any

from canonical.errors import ConfigError, ServiceError, SettingsError
from canonical.model import Entity, System
from rules.policy import Policy, load_policy
from sync_service.commands.console import error
from sync_service.context import AppContext
from sync_service.factory import build_connector
from sync_service.mapping import Mappings, load_mappings
from sync_service.mapping.online import FieldInfo, OnlineReport, validate_online
from sync_service.settings import Settings

HELP = "check mappings/, config/rules.yaml and settings offline (--online also asks the CRM)"

_LEVEL = {"contact": Entity.CONTACT, "account": Entity.ACCOUNT}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--online",
        action="store_true",
        help="also check the mappings against Salesforce's describe (uses a few API calls)",
    )


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Validate everything, print every problem, return 0 (valid) or 2 (not)."""
    problems: list[str] = []
    warnings: list[str] = []
    summary: list[str] = []

    settings: Settings | None = None
    try:
        settings = ctx.settings
        summary.append("settings")
    except SettingsError as exc:
        problems.extend(exc.problems)
    mappings_dir = (
        settings.mappings_dir if settings else Path(ctx.env.get("SYNC_MAPPINGS_DIR") or "mappings")
    )
    rules_file = (
        settings.rules_file
        if settings
        else Path(ctx.env.get("SYNC_RULES_FILE") or "config/rules.yaml")
    )

    mappings: Mappings | None = None
    try:
        mappings = load_mappings(mappings_dir)
        summary.append(_describe_mappings(mappings))
    except ConfigError as exc:
        problems.extend(exc.problems)

    policy_problems, policy_summary, policy = check_rules(rules_file)
    problems.extend(policy_problems)
    if policy_summary:
        summary.append(policy_summary)
    if policy is not None and mappings is not None:
        problems.extend(check_policy_features(policy, mappings, rules_file))

    if (
        settings is not None
        and mappings is not None
        and mappings.gainsight is not None
        and mappings.gainsight.writeback
        and not settings.gainsight.writeback_enabled
    ):
        warnings.append(
            f"{mappings.gainsight.where('writeback')}: Gainsight writeback is mapped but "
            "gainsight.writeback_enabled is false; nothing is written to Gainsight"
        )

    if getattr(args, "online", False):
        if problems:
            warnings.append("--online skipped: fix the problems above first")
        elif settings is not None and mappings is not None:
            report = check_online(settings, mappings)
            problems.extend(report.problems)
            warnings.extend(report.warnings)
            if not report.problems:
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


def check_online(settings: Settings, mappings: Mappings) -> OnlineReport:
    """Check the Salesforce mapping against the org's describe (Gainsight: offline only)."""
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
