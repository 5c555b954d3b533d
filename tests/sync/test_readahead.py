"""read_ahead: same items, same order, same errors as a plain loop; nothing runs on after it."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from sync_service.sync.readahead import read_ahead

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


def test_items_arrive_in_order():
    assert list(read_ahead(iter(range(100)))) == list(range(100))


def test_an_error_of_the_source_comes_after_the_items_before_it():
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        got.extend(read_ahead(source()))
    assert got == [1, 2]


def test_stopping_early_closes_the_source_and_ends_the_worker():
    produced: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    items = read_ahead(source(), depth=1, name="test-read-ahead")
    with closing(items):
        assert next(items) == 0
    assert closed.is_set()
    assert not any(t.name == "test-read-ahead" for t in threading.enumerate())
    assert len(produced) <= 3  # the item handed over, one waiting, one in the making


def test_the_worker_sees_the_callers_context():
    where.set("caller")

    def source() -> Iterator[str]:
        yield where.get()

    assert list(read_ahead(source())) == ["caller"]
