"""Read ahead: produce the next item in a worker thread while the caller handles this one.

A sync reads a batch (HTTP, CSV parsing, mapping) and then writes it (SQLite works with the GIL
released). Running the next read while the current batch is written overlaps the two. Items
keep their order; at most ``depth`` items wait, so memory stays bounded. An exception of the
source is raised to the caller after the items produced before it, as a plain loop would.
When the caller stops early the worker finishes its current item, closes the source and ends
before :func:`read_ahead` returns: nothing keeps reading behind the caller's back.

:func:`read_ahead` starts its worker when the first item is asked for; :class:`ReadAhead`
starts it at once, for a caller that runs several side by side (the features' readers) and
would otherwise start the second only once the first has handed over an item.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_END = object()


class ReadAhead(Generic[T]):
    """The items of ``source``, produced by a worker thread started at once.

    Iterate it, then :meth:`close` it (also when stopping early or never iterated): the worker
    finishes its current item, closes the source and ends.
    """

    def __init__(self, source: Iterable[T], depth: int = 1, name: str = "read-ahead") -> None:
        self._slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
        self._cancel = threading.Event()
        self._done = False
        # The worker runs in a copy of the caller's context (log fields, run ids in contextvars).
        self._worker = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._work, source),
            name=name,
            daemon=True,
        )
        self._worker.start()

    def _work(self, source: Iterable[T]) -> None:
        items = iter(source)
        try:
            for item in items:
                self._slots.put((item, None))
                if self._cancel.is_set():
                    return
        except BaseException as exc:  # handed over and raised by the caller
            self._slots.put((_END, exc))
        else:
            self._slots.put((_END, None))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item, error = self._slots.get()
        if item is _END:
            self._done = True
            if error is not None:
                raise error
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the worker after its current item and wait for it to end."""
        self._done = True
        self._cancel.set()
        while self._worker.is_alive():
            # Free the slot the worker may be blocked on, then let it finish its item.
            try:
                while True:
                    self._slots.get_nowait()
            except queue.Empty:
                pass
            self._worker.join(0.05)


def read_ahead(
    source: Iterable[T], depth: int = 1, name: str = "read-ahead"
) -> Generator[T, None, None]:
    """Yield the items of ``source``, the next ones produced by a worker thread."""
    ahead = ReadAhead(source, depth, name)
    try:
        yield from ahead
    finally:
        ahead.close()
