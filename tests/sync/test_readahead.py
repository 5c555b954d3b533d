"""read_ahead: same items, same order, same errors as a plain loop; nothing runs on after it."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from sync_service.sync.readahead import ReadAhead, read_ahead

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


def test_read_ahead_object_starts_at_once_and_a_close_before_any_item_ends_it():
    started = threading.Event()
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            started.set()
            yield from range(1000)
        finally:
            closed.set()

    ahead = ReadAhead([source()], depth=1, name="test-read-ahead-object")
    # the worker runs before anything is asked of it (read_ahead's waits for the first next())
    assert started.wait(5)
    ahead.close()
    assert closed.is_set()
    assert not any(t.name == "test-read-ahead-object" for t in threading.enumerate())
    assert list(ahead) == []


def test_read_ahead_object_yields_in_order_and_raises_after_the_items_before():
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    ahead = ReadAhead([source()])
    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        got.extend(ahead)
    ahead.close()
    assert got == [1, 2]
    assert list(ahead) == []  # an ended reader stays ended


def test_several_sources_each_in_order_a_slow_one_does_not_hold_the_others_back():
    slow_may_go = threading.Event()

    def slow() -> Iterator[str]:
        assert slow_may_go.wait(5)
        yield from ("s0", "s1")

    def quick() -> Iterator[str]:
        yield from ("q0", "q1", "q2")

    ahead = ReadAhead([slow(), quick()], depth=1, name="test-read-ahead-merge")
    try:
        got = [next(ahead) for _ in range(3)]  # the quick one's, while the slow one waits
        slow_may_go.set()
        got += list(ahead)
    finally:
        ahead.close()
    assert got[:3] == ["q0", "q1", "q2"]
    assert [x for x in got if x.startswith("s")] == ["s0", "s1"]
    assert not any(t.name.startswith("test-read-ahead-merge") for t in threading.enumerate())


def test_an_error_of_one_source_stops_every_worker():
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            while True:
                yield 1
        finally:
            closed.set()

    def broken() -> Iterator[int]:
        raise RuntimeError("reader failed")
        yield 0  # pragma: no cover

    ahead = ReadAhead([endless(), broken()], name="test-read-ahead-error")
    with pytest.raises(RuntimeError, match="reader failed"):
        for _ in ahead:
            pass
    ahead.close()
    assert closed.is_set()
    assert not any(t.name.startswith("test-read-ahead-error") for t in threading.enumerate())
