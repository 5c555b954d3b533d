"""Consent per activity, consent age and source, and Gainsight extras as features in SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.engine import Engine

from canonical.model import Entity
from rules import parse_policy
from sync_service.evaluate.features import compute_features
from tests.store_seed import seed

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

POLICY = """\
version: "t"
features:
  opt_in_age_days: integer
  opt_in_source: string
  consent_case_study: boolean
  consent_beta_advisory: boolean
  consent_logo_use: boolean
  gs_tier: {type: string, extra: gs_tier, entity: contact}
  gs_seats: {type: integer, extra: gs_seats, entity: account}
  sf_note: {type: string, extra: sf_note, entity: contact}
eligibility:
  - id: gold
    when: >-
      gs_tier = 'Gold' AND gs_seats > 100
    reason: not gold
consent:
  requires:
    Case Study: Case Study
    Beta: Beta/Advisory
"""


def test_consent_features_age_source_and_gainsight_extras(engine: Engine) -> None:
    seed(engine, Entity.ACCOUNT, [{"id": "A1"}, {"id": "A2", "extra": {}}])
    seed(
        engine,
        Entity.ACCOUNT,
        [{"id": "GC1", "source": "gainsight", "sf_account_id": "A1", "extra": {"gs_seats": 250}}],
    )
    seed(
        engine,
        Entity.CONTACT,
        [
            {
                "id": "C1",
                "account_id": "A1",
                "opt_in_date": date(2026, 11, 3),
                "opt_in_source": "Web Form",
                "consent_types": "Case Study;Beta/Advisory",
                "extra": {"sf_note": "from Salesforce", "gs_tier": "Silver"},
            },
            {"id": "C2", "account_id": "A1", "consent_types": " case study ; Logo Use"},
            {"id": "C3", "account_id": "A2", "consent_types": None},
        ],
    )
    seed(
        engine,
        Entity.CONTACT,
        [
            {"id": "GP1", "source": "gainsight", "sf_contact_id": "C1", "extra": {"gs_tier": "X"}},
            {
                "id": "GP2",
                "source": "gainsight",
                "sf_contact_id": "C2",
                "extra": {"gs_tier": "Gold"},
            },
            {
                "id": "GP3",
                "source": "gainsight",
                "sf_contact_id": "C3",
                "extra": {"gs_tier": "Gold"},
                "deleted": True,
            },
        ],
    )
    f = compute_features(engine, parse_policy(POLICY, "r.yaml"), NOW).sort("contact_id")
    rows = {r["contact_id"]: r for r in f.iter_rows(named=True)}
    c1, c2, c3 = rows["C1"], rows["C2"], rows["C3"]
    assert (c1["opt_in_age_days"], c1["opt_in_source"]) == (20, "Web Form")
    assert c2["opt_in_age_days"] is None
    assert (c1["consent_case_study"], c1["consent_beta_advisory"], c1["consent_logo_use"]) == (
        True,
        True,
        False,
    )
    assert (c2["consent_case_study"], c2["consent_beta_advisory"], c2["consent_logo_use"]) == (
        True,
        False,
        True,
    )
    assert (c3["consent_case_study"], c3["consent_logo_use"]) == (False, False)
    # a Salesforce extra wins; a Gainsight one fills in; a deleted Gainsight row gives nothing
    assert (c1["gs_tier"], c2["gs_tier"], c3["gs_tier"]) == ("Silver", "Gold", None)
    assert c1["sf_note"] == "from Salesforce"
    assert (c1["gs_seats"], c3["gs_seats"]) == (250, None)
    assert f["gs_seats"].dtype.is_integer()
    from rules import evaluate

    verdicts = evaluate(parse_policy(POLICY, "r.yaml"), f, NOW).sort("contact_id")
    assert verdicts["status"].to_list() == ["Not Eligible", "Eligible", "Not Eligible"]
    assert verdicts["available_for"].to_list() == [None, "Case Study", None]


def test_declines_suspend_and_a_status_cap_counts_only_its_statuses_through_the_store(
    engine: Engine,
) -> None:
    """The shipped policy over stored asks (both backends), not over a hand-made frame."""
    from datetime import timedelta
    from pathlib import Path

    from rules import evaluate

    text = (Path(__file__).resolve().parents[3] / "config" / "rules.yaml").read_text()
    text = text.replace(
        "    - id: contact_quarter\n      scope: contact\n",
        "    - id: contact_quarter\n      scope: contact\n      statuses: [Completed]\n",
    )
    policy = parse_policy(text, "rules.yaml")
    today = NOW.date()
    seed(engine, Entity.ACCOUNT, [{"id": f"A{i}"} for i in range(4)])
    seed(
        engine,
        Entity.CONTACT,
        [{"id": f"C{i}", "account_id": f"A{i}", "opted_in": True} for i in range(4)],
    )
    plan = {
        "C0": [(20, "Declined"), (50, "declined")],  # two declines in 60 days
        "C1": [(20, "Declined"), (61, "Declined")],  # the second is older than 60 days
        "C2": [(20, "Requested"), (30, "Requested"), (40, "Accepted")],  # not Completed
        "C3": [(20, "Completed"), (30, "completed"), (40, "Completed")],
    }
    seed(
        engine,
        Entity.ASK,
        [
            {
                "id": f"{c}-{n}",
                "contact_id": c,
                "account_id": "A" + c[1:],
                "ask_type": "Case Study",
                "team": "Marketing",
                "status": status,
                "requested_date": today - timedelta(days=days),
            }
            for c, asks in plan.items()
            for n, (days, status) in enumerate(asks)
        ],
    )
    f = compute_features(engine, policy, NOW).sort("contact_id")
    assert f["cap__contact_quarter__count"].to_list() == [0, 0, 0, 3]
    out = {r["contact_id"]: r for r in evaluate(policy, f, NOW).iter_rows(named=True)}
    assert (out["C0"]["status"], out["C0"]["reason"]) == (
        "Suspended",
        "Declined 2 asks in the last 60 days",
    )
    assert out["C1"]["status"] != "Suspended"
    assert "cap 3" not in str(out["C2"]["reason"])  # Requested and Accepted asks do not count
    assert str(out["C3"]["reason"]).endswith("3 asks in 90 days, cap 3")
    assert out["C3"]["next_available"] == today - timedelta(days=40) + timedelta(days=90)
