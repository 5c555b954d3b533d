"""A tiny in-memory Gainsight query endpoint for ``responses`` callbacks, plus test helpers.

It answers ``POST /v1/data/objects/query/{object}`` the way Gainsight's Read API documents:
conditions ANDed, ``orderBy`` ascending, ``limit``/``offset``, date-times as epoch ms in the
answer and ``yyyy-MM-dd HH:mm:ss`` in filters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from connectors.gainsight import CallBudget, GainsightConfig, GainsightConnector, build_session

BASE = "https://acme.gainsightcloud.com"
KEY = "sekret-access-key-123"
QUERY_RE = re.compile(rf"{re.escape(BASE)}/v1/data/objects/query/(\w+)")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def envelope(records: Any, **kw: Any) -> dict[str, Any]:
    return {
        "result": True,
        "errorCode": None,
        "errorDesc": None,
        "requestId": "r-1",
        "data": records,
        "message": None,
        **kw,
    }


class FakeClock:
    """Epoch seconds that move only when someone sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


@dataclass
class FakeGainsight:
    """Records per object; answers query calls; remembers every request body."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    data_as_list: bool = False
    mutate: Callable[[FakeGainsight, int], None] | None = None

    def _value(self, rec: dict[str, Any], name: str) -> Any:
        v = rec.get(name)
        return v

    def _match(self, rec: dict[str, Any], cond: dict[str, Any]) -> bool:
        name, op, values = cond["name"], cond["operator"], cond["value"]
        v = self._value(rec, name)
        if v is None:
            return False
        if isinstance(v, int) and name.endswith("Date"):
            filt = [
                ms(datetime.strptime(x, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)) for x in values
            ]
        else:
            filt = values
        x = filt[0]
        return {
            "EQ": lambda: v == x,
            "NE": lambda: v != x,
            "GT": lambda: v > x,
            "GTE": lambda: v >= x,
            "LT": lambda: v < x,
            "LTE": lambda: v <= x,
            "IN": lambda: v in filt,
        }[op]()

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        m = QUERY_RE.match(request.url or "")
        assert m, request.url
        assert request.headers.get("accesskey") == KEY
        body = json.loads(request.body or b"{}")
        self.bodies.append(body)
        if self.mutate:
            self.mutate(self, len(self.bodies))
        recs = list(self.objects.get(m.group(1), []))
        where = body.get("where")
        if where:
            assert where["expression"] == " AND ".join(c["alias"] for c in where["conditions"])
            recs = [r for r in recs if all(self._match(r, c) for c in where["conditions"])]
        keys = list(body.get("orderBy", {}))
        recs.sort(key=lambda r: tuple((r.get(k) is None, r.get(k)) for k in keys))
        page = recs[body["offset"] : body["offset"] + body["limit"]]
        page = [{k: r.get(k) for k in body["select"]} for r in page]
        data: Any = page if self.data_as_list else {"records": page}
        return 200, {}, json.dumps(envelope(data))


def make_connector(
    *,
    page_size: int = 2,
    calls_per_minute: int = 1000,
    calls_per_day: int = 100_000,
    budget_share: float = 1.0,
    clock: FakeClock | None = None,
    max_attempts: int = 4,
    writes_enabled: bool = False,
) -> tuple[GainsightConnector, FakeClock]:
    clock = clock or FakeClock(at("2026-11-23T10:00:00").timestamp())
    cfg = GainsightConfig(
        base_url=BASE,
        access_key=KEY,
        page_size=page_size,
        calls_per_minute=calls_per_minute,
        calls_per_day=calls_per_day,
        budget_share=budget_share,
        max_attempts=max_attempts,
        timeout_seconds=5,
    )
    budget = CallBudget(
        cfg.calls_per_minute,
        cfg.daily_budget,
        calls_per_day=cfg.calls_per_day,
        clock=clock,
        sleep=clock.sleep,
    )
    conn = GainsightConnector(
        cfg, build_session(cfg), budget=budget, sleep=clock.sleep, writes_enabled=writes_enabled
    )
    return conn, clock
