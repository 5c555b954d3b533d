"""Only the features a policy declares are computed."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from rules import parse_policy
from sync_service.evaluate.features.chunks import compute_features
from tests.evaluate.features.helpers import (
    NOW,
    seed_world,
)


@pytest.mark.parametrize("name", ["opted_in", "nps_latest", "open_escalations"])
def test_only_what_the_policy_declares_is_computed(engine: Engine, name: str) -> None:
    seed_world(engine)
    text = f'version: "x"\nfeatures:\n  {name}: {"boolean" if name == "opted_in" else "integer"}\n'
    f = compute_features(engine, parse_policy(text, "r.yaml"), NOW)
    # plus the engagement features every policy writes back (last ask, asks in 90 days)
    assert f.columns == ["contact_id", "account_id", name, "last_ask_date", "asks_last_90d"]
    assert f.height == 4
