"""A cycle with nothing to do costs a handful of API calls and writes nothing.

Measured as ``run-once`` runs it (every source, evaluation, writeback), on the sandbox with
Gainsight on: after a first cycle and the echo cycle that reads back what the first one wrote,
a cycle with no change in either CRM asks every Salesforce stream's read in one Composite call
(whose answers hold every row of the overlap window: no read of its own), describes nothing (the
describes are kept in the var dir), logs in no more (one token per process) and writes nothing.
Before this, such a cycle made 18 API calls (five ``COUNT()``s, five describes, five reads,
three Gainsight queries) and one more login; with the counts alone in the Composite call, 9.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox
from sync_service.ops.runs import Run
from sync_service.pipeline import run_cycle
from tests.e2e.test_writeback import (  # the CA fixture is used by name
    context,
    process_ca,  # noqa: F401
    service_env,
    write_calls,
)

#: What issue 18 allows a cycle with no change, Salesforce and Gainsight together.
MAX_QUIET_CALLS = 12


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(accounts=30, seed=5) as sandbox:
        yield sandbox


def spent_since(sb: Sandbox, before: Counter[str]) -> Counter[str]:
    """API calls per kind since ``before`` (a snapshot of ``sb.api_calls``)."""
    after = sb.api_calls
    return Counter({k: after[k] - before[k] for k in after if after[k] != before[k]})


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_a_cycle_without_changes_makes_few_api_calls_and_writes_nothing(
    sb: Sandbox, db_url: str, tmp_path: Path
) -> None:
    ctx = context(service_env(sb, db_url, tmp_path, gainsight=True))
    first = run_cycle(ctx)
    assert [r.status for r in first] == ["success"] * 4
    assert first[-1].counts["writeback.success"] > 100
    run_cycle(ctx)  # the echo: reads back what the first cycle wrote
    writes = write_calls(sb)

    before = sb.api_calls
    runs: list[Run] = run_cycle(ctx)
    spent = spent_since(sb, before)
    assert [r.status for r in runs] == ["success"] * 4
    total = spent["salesforce"] + spent["gainsight"]
    assert total <= MAX_QUIET_CALLS, dict(spent)
    assert spent["salesforce.composite_request"] == 1  # every stream's read in one call
    assert spent["salesforce"] == 1, dict(spent)  # ... and nothing else: no query, no page
    assert spent["salesforce.sobjects"] == 0  # no describe: kept from the first cycle
    assert spent["salesforce.token"] == 0  # no login: the process's token
    wb = runs[-1]
    assert (wb.counts["writeback.calls"], wb.counts["writeback.changed"]) == (0, 0)
    assert write_calls(sb) == writes
    ctx.engine.dispose()
