"""``sync-service explain``: show why a contact or account has its status.

The person or account may be named by a 15- or 18-character Salesforce id, an e-mail or a name;
when a name or e-mail fits several, the matches are listed (exit 2) to pick one by id. Values
are shown for people: ``yes``/``no``, ``—`` for no value, times to the minute in UTC.
"""

from __future__ import annotations

import argparse
from typing import Any

from sync_service.commands.console import emit_json, error, shown
from sync_service.context import AppContext, require_existing_store
from sync_service.evaluate.evaluation import SNAPSHOT_NAME, load_policy_or_last_valid
from sync_service.evaluate.explain import explain_entity
from sync_service.evaluate.lookup import MAX_MATCHES, Match, find
from sync_service.ops.runs import utcnow

HELP = "show why a contact or account has its status (by id, e-mail or name)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "id",
        metavar="ID",
        help="the contact's or account's Salesforce id (15 or 18 characters), e-mail or name",
    )


def _text(out: dict[str, Any]) -> None:
    who = out.get("contact_id") if out["entity_type"] == "contact" else out["account_id"]
    print(f"{out['entity_type']} {who}  {out.get('name', '')}".rstrip())
    print(f"  policy          {out['policy_version']} ({out['policy_hash'][:12]})")
    print(f"  status          {out['status']}")
    print(f"  reason          {shown(out['reason'])}")
    print(f"  eligible        {shown(out['eligible'])}")
    print(f"  score           {shown(out['score'])}")
    print(f"  next available  {shown(out['next_available'])}")
    if out["entity_type"] == "contact":
        print(f"  asks (recent)   {shown(out.get('recent_asks') or 0)}")
        print(f"  last ask        {shown(out.get('last_ask'))}")
        print(f"  available for   {shown(out.get('available_for'))}")
    print("features")
    for k, v in out["features"].items():
        print(f"  {k:<34} {shown(v)}")
    print("rules")
    for r in out["rules"]:
        extra = f"  -> {r['reason']}" if r.get("reason") else ""
        print(f"  [{r['kind']}] {r['id']}: {r['outcome']}   ({r['when']}){extra}")
    for cap in out.get("caps", []):
        mark = "BINDS" if cap["binding"] else "ok"
        until = f" until {shown(cap['until'])}" if cap["until"] else ""
        print(f"  [cap] {cap['id']}: {cap['words']} ({mark}{until})")
        for a in cap.get("asks", []):
            parts = (a["date"], a["type"], a["team"], a["status"])
            print("      " + "  ".join(str(x or "-") for x in parts))
    rest = out.get("rest")
    if rest:
        state = f"BINDS until {shown(rest['until'])}" if rest["binding"] else "ok"
        last_ask = shown(rest["last_ask_date"]) if rest["last_ask_date"] else "none"
        print(f"  [rest] {rest['rest_days']} days after the last ask ({last_ask}): {state}")
    if out.get("score_terms"):
        print("score")
        for t in out["score_terms"]:
            points = f"{shown(t['points'])} points (weight {shown(t['weight'])})"
            print(f"  {t['id']:<16} value {shown(t['value'])}  -> {points}")
    if "contacts" in out:
        c = out["contacts"]
        counts = ", ".join(f"{k} {v}" for k, v in c["by_status"].items())
        print(f"contacts ({c['total']}): {counts}")
        for r in c["top"]:
            score, reason = shown(r["score"]), shown(r["reason"])
            print(f"  {r['contact_id']}  {r['status']:<13} {score:>5}  {reason}")
    last = out.get("last_evaluation")
    stored = f"{last['status']} at {shown(last['evaluated_at'])}" if last else "none yet"
    print(f"stored verdict    {stored}")
    for h in out.get("history", []):
        old = h["old_status"] or "(none)"
        print(f"  {shown(h['changed_at'])}  {old} -> {h['new_status']}  {shown(h['reason'])}")
    if out.get("writeback"):
        print("written to the CRM")
        for w in out["writeback"]:
            where = f"{w['target']} {w['object_name']}.{w['field']}"
            old, new = shown(w["old_value"]), shown(w["new_value"])
            print(f"  {shown(w['written_at'])}  {where}: {old} -> {new}")


def _list_matches(query: str, matches: list[Match], as_json: bool) -> None:
    more = len(matches) > MAX_MATCHES
    matches = matches[:MAX_MATCHES]
    if as_json:
        emit_json(
            {
                "matches": [
                    {"entity_type": m.entity_type, "id": m.id, "name": m.label()} for m in matches
                ],
                "more": more,
            }
        )
        return
    what = "that e-mail" if "@" in query else f"'{query}'"
    print(f"{len(matches)}{'+' if more else ''} records match {what}; explain one by its id:")
    for m in matches:
        print(f"  {m.entity_type:<8} {m.id}  {m.label()}")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Explain one contact or account; exit 2 when nothing or several match."""
    settings = ctx.settings
    require_existing_store(ctx)
    try:
        matches = find(ctx.engine, args.id)
    except ValueError as exc:
        error(f"{exc}; give an id, an e-mail or a name")
        return 2
    if not matches:
        # never echo an e-mail address: it is personal data
        what = "with that e-mail" if "@" in args.id else f"matching '{args.id}'"
        error(f"no contact or account {what} in the store; run sync first or check it")
        return 2
    if len(matches) > 1:
        _list_matches(args.id, matches, ctx.json_output)
        return 2
    match = matches[0]
    policy, problems = load_policy_or_last_valid(settings.rules_file, ctx.var_dir / SNAPSHOT_NAME)
    for line in problems:
        error(line)
    out = explain_entity(ctx.engine, policy, match.id, utcnow())
    if out is None:  # deleted between the lookup and now
        error(f"{match.entity_type} {match.id} is no longer in the store")
        return 2
    out["name"] = match.label()
    if problems:
        out["policy_problems"] = problems
    if ctx.json_output:
        emit_json(out)
    else:
        _text(out)
    return 0
