"""A query's result becomes a typed polars frame: values, NULLs and separators come through."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.store import frames
from sync_service.store.frames import cast_column, read_frame
from sync_service.store.models import accounts
from tests.store_seed import seed

TYPES = {
    "id": pl.String(),
    "industry": pl.String(),
    "health_score": pl.Float64(),
    "churn_risk": pl.Boolean(),
    "customer_since": pl.Date(),
}


def _query() -> sa.Select[Any]:
    a = accounts
    return sa.select(*[a.c[name].label(name) for name in TYPES]).order_by(a.c.id)


def test_rows_come_back_typed_with_nulls_and_empty_text_apart(engine: Engine) -> None:
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {
                "id": "001A",
                "industry": "Acme, \"the\" O'Brien's \nsecond line",
                "health_score": 91.5,
                "churn_risk": True,
                "customer_since": date(2024, 1, 31),
            },
            {"id": "001B", "industry": "", "churn_risk": False},
            {"id": "001C"},
        ],
    )
    with engine.connect() as conn:
        frame = read_frame(conn, _query(), TYPES)
    assert frame.schema == pl.Schema(TYPES)
    assert frame.rows() == [
        ("001A", "Acme, \"the\" O'Brien's \nsecond line", 91.5, True, date(2024, 1, 31)),
        ("001B", "", None, False, None),
        ("001C", None, None, None, None),
    ]


def test_an_empty_result_is_an_empty_frame_of_the_types(engine: Engine) -> None:
    with engine.connect() as conn:
        frame = read_frame(conn, _query(), TYPES)
    assert frame.height == 0
    assert frame.schema == pl.Schema(TYPES)


def test_values_holding_a_separator_are_read_again_as_quoted_csv(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = {"001A": "unit\x1fseparator", "001B": "record\x1eseparator", "001C": "plain"}
    seed(engine, Entity.ACCOUNT, [{"id": a, "industry": v} for a, v in odd.items()])
    real = frames._read_text
    passes: list[bool] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        passes.append(kwargs["quoted"])
        return real(*args, **kwargs)

    monkeypatch.setattr(frames, "_read_text", spy)
    with engine.connect() as conn:
        plain = read_frame(conn, _query().where(accounts.c.id == "001C"), TYPES)
        assert passes == [False]
        both = read_frame(conn, _query(), TYPES)
    assert plain["industry"].to_list() == ["plain"]
    assert dict(zip(both["id"], both["industry"], strict=True)) == odd
    assert passes == [False, False, True]


@pytest.mark.parametrize(
    ("values", "have", "want", "expected"),
    [
        (["t", "f", "TRUE", None], pl.String(), pl.Boolean(), [True, False, True, None]),
        ([1, 0, None], pl.Int64(), pl.Boolean(), [True, False, None]),
        (
            ["2024-05-01 12:00:00", "bad", None],
            pl.String(),
            pl.Date(),
            [date(2024, 5, 1), None, None],
        ),
        (["12", "x"], pl.String(), pl.Int64(), [12, None]),
    ],
)
def test_cast_column_converts_what_it_can_and_nulls_the_rest(
    values: list[Any], have: pl.DataType, want: pl.DataType, expected: list[Any]
) -> None:
    frame = pl.DataFrame({"v": pl.Series(values, dtype=have)})
    assert frame.select(cast_column(pl.col("v"), have, want).alias("v"))["v"].to_list() == expected


@pytest.mark.parametrize("width", [3, frames._SQLITE_FORMAT_ARGS + 1])
def test_a_row_of_many_fields_and_percent_signs_comes_through(engine: Engine, width: int) -> None:
    # SQLite builds a row with one format() call up to its argument limit, with || beyond it;
    # a value is an argument of format(), never part of its pattern
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {"id": "001A", "industry": "100% %s %d", "health_score": 0.1},
            {"id": "001B", "health_score": 1 / 3},
        ],
    )
    a = accounts
    cols = [a.c.id.label("id"), a.c.industry.label("industry")]
    cols += [a.c.health_score.label(f"h{i}") for i in range(width - 2)]
    types: dict[str, pl.DataType] = {"id": pl.String(), "industry": pl.String()}
    types |= {f"h{i}": pl.Float64() for i in range(width - 2)}
    with engine.connect() as conn:
        frame = read_frame(conn, sa.select(*cols).order_by(a.c.id), types)
    assert frame.width == width
    assert frame.row(0)[:3] == ("001A", "100% %s %d", 0.1)
    assert frame.row(1)[:2] == ("001B", None)
    assert frame.row(1)[2] == pytest.approx(1 / 3)
    assert all(frame[f"h{i}"].equals(frame["h0"]) for i in range(width - 2))
