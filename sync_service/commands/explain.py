"""``sync-service explain``: show why a contact or account has its status."""

from __future__ import annotations

import argparse
from typing import Any

from sync_service.commands.console import emit_json, error
from sync_service.context import AppContext
from sync_service.evaluate.evaluation import SNAPSHOT_NAME, load_policy_or_last_valid
from sync_service.evaluate.explain import explain_entity
from sync_service.ops.runs import utcnow

HELP = "show why a contact or account has its status"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("id", metavar="ID", help="Salesforce id of the contact or account")


def _text(out: dict[str, Any]) -> None:
    who = out.get("contact_id") if out["entity_type"] == "contact" else out["account_id"]
    print(
        f"{out['entity_type']} {who}   (policy {out['policy_version']}, {out['policy_hash'][:12]})"
    )
    print(f"  status          {out['status']}")
    print(f"  reason          {out['reason']}")
    print(f"  eligible        {'yes' if out['eligible'] else 'no'}")
    print(f"  score           {out['score'] if out['score'] is not None else '-'}")
    print(f"  next available  {out['next_available'] or '-'}")
    print("features")
    for k, v in out["features"].items():
        print(f"  {k:<34} {'NULL' if v is None else v}")
    print("rules")
    for r in out["rules"]:
        extra = f"  -> {r['reason']}" if r.get("reason") else ""
        print(f"  [{r['kind']}] {r['id']}: {r['outcome']}   ({r['when']}){extra}")
    for cap in out.get("caps", []):
        mark = "BINDS" if cap["binding"] else "ok"
        until = f" until {cap['until']}" if cap["until"] else ""
        print(f"  [cap] {cap['id']}: {cap['words']} ({mark}{until})")
    rest = out.get("rest")
    if rest:
        state = f"BINDS until {rest['until']}" if rest["binding"] else "ok"
        last_ask = rest["last_ask_date"] or "none"
        print(f"  [rest] {rest['rest_days']} days after the last ask ({last_ask}): {state}")
    if out.get("score_terms"):
        print("score")
        for t in out["score_terms"]:
            points = f"{t['points']} points (weight {t['weight']})"
            print(f"  {t['id']:<16} value {t['value']}  -> {points}")
    if "contacts" in out:
        c = out["contacts"]
        counts = ", ".join(f"{k} {v}" for k, v in c["by_status"].items())
        print(f"contacts ({c['total']}): {counts}")
        for r in c["top"]:
            print(f"  {r['contact_id']}  {r['status']:<13} {r['score']:>5}  {r['reason']}")
    last = out.get("last_evaluation")
    stored = f"{last['status']} at {last['evaluated_at']}" if last else "none yet"
    print(f"stored verdict    {stored}")
    for h in out.get("history", []):
        old = h["old_status"] or "(none)"
        print(f"  {h['changed_at']}  {old} -> {h['new_status']}  {h['reason']}")
    if out.get("writeback"):
        print("written to the CRM")
        for w in out["writeback"]:
            where = f"{w['target']} {w['object_name']}.{w['field']}"
            print(f"  {w['written_at']}  {where}: {w['old_value']!r} -> {w['new_value']!r}")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Explain one contact or account; exit 2 when the id is not in the store."""
    return _run(args, ctx)


def _run(args: argparse.Namespace, ctx: AppContext) -> int:
    settings = ctx.settings
    policy, problems = load_policy_or_last_valid(settings.rules_file, ctx.var_dir / SNAPSHOT_NAME)
    for line in problems:
        error(line)
    out = explain_entity(ctx.engine, policy, args.id, utcnow())
    if out is None:
        error(
            f"no contact or account with id {args.id} in the store; run sync first or check the id"
        )
        return 2
    if problems:
        out["policy_problems"] = problems
    if ctx.json_output:
        emit_json(out)
    else:
        _text(out)
    return 0
