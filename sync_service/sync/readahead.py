"""Read ahead: produce the next item in a worker thread while the caller handles this one.

A sync reads a batch (HTTP, CSV parsing, mapping) and then writes it (SQLite works with the GIL
released). Running the next read while the current batch is written overlaps the two. Items
keep their order; at most ``depth`` items wait, so memory stays bounded. An exception of the
source is raised to the caller after the items produced before it, as a plain loop would.
When the caller stops early the worker finishes its current item, closes the source and ends
before :func:`read_ahead` returns: nothing keeps reading behind the caller's back.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(
    source: Iterable[T], depth: int = 1, name: str = "read-ahead"
) -> Generator[T, None, None]:
    """Yield the items of ``source``, the next ones produced by a worker thread."""
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    cancel = threading.Event()

    def work() -> None:
        items = iter(source)
        try:
            for item in items:
                slots.put((item, None))
                if cancel.is_set():
                    return
        except BaseException as exc:  # handed over and raised by the caller
            slots.put((_END, exc))
        else:
            slots.put((_END, None))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    # The worker runs in a copy of the caller's context (log fields, run ids in contextvars).
    worker = threading.Thread(
        target=contextvars.copy_context().run, args=(work,), name=name, daemon=True
    )
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        cancel.set()
        while worker.is_alive():
            # Free the slot the worker may be blocked on, then let it finish its item.
            try:
                while True:
                    slots.get_nowait()
            except queue.Empty:
                pass
            worker.join(0.05)
