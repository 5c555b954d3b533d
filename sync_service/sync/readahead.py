"""Read ahead: produce the next item in a worker thread while the caller handles this one.

A sync reads a batch (HTTP, CSV parsing, mapping) and then writes it (SQLite works with the GIL
released). Running the next read while the current batch is written overlaps the two. Items
keep their order; at most ``depth`` items wait, so memory stays bounded. An exception of the
source is raised to the caller after the items produced before it, as a plain loop would.
When the caller stops early the worker finishes its current item, closes the source and ends
before :func:`read_ahead` returns: nothing keeps reading behind the caller's back.

:func:`read_ahead` starts its worker when the first item is asked for. :class:`ReadAhead`
starts its workers at once and runs several sources side by side (the features' readers),
handing over whichever item is ready first: readers asked in turn would wait for each other
(a second one started only once the first had handed over an item, and a reader done early
idled until its turn).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_END = object()


class ReadAhead(Generic[T]):
    """The items of ``sources``, each produced by a worker thread of its own, started at once.

    One source: its items in order. Several: each one's items in its order, interleaved as
    they are ready (no worker waits for another's turn). Each worker has ``depth`` places in
    the queue. An error of a source is raised when it comes out of the queue (the items queued
    before it first). Iterate it, then :meth:`close` it (also when stopping early or never
    iterated): every worker finishes its current item, closes its source and ends.
    """

    def __init__(
        self, sources: Sequence[Iterable[T]], depth: int = 1, name: str = "read-ahead"
    ) -> None:
        self._slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(
            maxsize=depth * len(sources)
        )
        self._cancel = threading.Event()
        self._running = len(sources)
        self._done = not sources
        # The workers run in a copy of the caller's context (log fields, run ids in contextvars).
        self._workers = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._work, source),
                name=name if len(sources) == 1 else f"{name}-{i}",
                daemon=True,
            )
            for i, source in enumerate(sources)
        ]
        for worker in self._workers:
            worker.start()

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
        while not self._done:
            item, error = self._slots.get()
            if item is not _END:
                return item  # type: ignore[no-any-return]
            self._running -= 1
            if error is not None or self._running == 0:
                self._done = True
                if error is not None:
                    raise error
        raise StopIteration

    def close(self) -> None:
        """Stop the workers after their current item and wait for them to end."""
        self._done = True
        self._cancel.set()
        for worker in self._workers:
            while worker.is_alive():
                # Free the slots the workers may be blocked on, then let them finish their item.
                try:
                    while True:
                        self._slots.get_nowait()
                except queue.Empty:
                    pass
                worker.join(0.05)


def read_ahead(
    source: Iterable[T], depth: int = 1, name: str = "read-ahead"
) -> Generator[T, None, None]:
    """Yield the items of ``source``, the next ones produced by a worker thread."""
    ahead = ReadAhead([source], depth, name)
    try:
        yield from ahead
    finally:
        ahead.close()
