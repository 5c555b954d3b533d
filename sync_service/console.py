"""Terminal output: plain lines, JSON, and a progress bar only when a person is watching."""

from __future__ import annotations

import json
import sys
import time
from types import TracebackType
from typing import IO, Any


def emit_json(data: Any, stream: IO[str] | None = None) -> None:
    """Print ``data`` as indented JSON (dates and other objects as strings)."""
    print(json.dumps(data, indent=2, default=str, sort_keys=False), file=stream or sys.stdout)


def error(message: str) -> None:
    """Print one error line to stderr."""
    print(f"error: {message}", file=sys.stderr)


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise.

    Logs, not bars, are what an unattended run leaves behind; a bar in a log file is noise.
    """

    def __init__(self, label: str, total: int | None = None, stream: IO[str] | None = None):
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._last = 0.0

    def __enter__(self) -> Progress:
        return self

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done and redraw at most ten times a second."""
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last > 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            text = f"\r{self.label} [{bar:<30}] {self.done:,}/{self.total:,}"
        else:
            text = f"\r{self.label} {self.done:,}"
        self.stream.write(text)
        self.stream.flush()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


class StreamProgress:
    """One progress line per stream, for ``IngestOptions.progress``; silent off a terminal."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._current: Progress | None = None

    def __call__(self, label: str, n: int) -> None:
        """Count ``n`` more records of ``label``, starting a new line for a new stream."""
        if self._current is None or self._current.label != label:
            self.close()
            self._current = Progress(label, stream=self.stream).__enter__()
        self._current.advance(n)

    def close(self) -> None:
        """Finish the current line."""
        if self._current is not None:
            self._current.__exit__(None, None, None)
            self._current = None
