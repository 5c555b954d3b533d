"""The route table: method and path pattern to handler.

A pattern is a path of literal segments and ``{name}`` parameters (``/sobjects/{object}/{id}``).
Empty segments are ignored, as Salesforce ignores a trailing slash. The first route whose
pattern and method both match wins, so a literal route (``/sobjects/{object}/describe``) is
listed before the parameter it shadows (``/sobjects/{object}/{id}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sandbox.http import Request, Response


@dataclass(frozen=True)
class Call:
    """One routed request: the request, the API version of its URL, the path parameters."""

    req: Request
    version: str
    params: dict[str, str]


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class Route:
    """``method`` on a path matching ``pattern`` is answered by ``handler``."""

    method: str
    pattern: str
    handler: Handler

    @property
    def segments(self) -> tuple[str, ...]:
        """The pattern's non-empty segments."""
        return tuple(p for p in self.pattern.split("/") if p)


@dataclass(frozen=True)
class Match:
    """What a path resolved to: a handler and its parameters, or the methods it allows."""

    handler: Handler | None
    params: dict[str, str]
    allowed: tuple[str, ...]


class RouteTable:
    """Routes matched in order (see the module docstring)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        # Only routes with as many segments as the path can match it: look at those alone.
        self._by_length: dict[int, list[tuple[str, tuple[str, ...], Handler]]] = {}
        for r in self.routes:
            self._by_length.setdefault(len(r.segments), []).append(
                (r.method, r.segments, r.handler)
            )

    def resolve(self, method: str, path: str) -> Match:
        """The handler for ``method`` on ``path``.

        Without one, ``allowed`` lists the methods the path answers (empty: no such path).
        """
        parts = [p for p in path.split("/") if p]
        allowed: list[str] = []
        for route_method, segments, handler in self._by_length.get(len(parts), ()):
            params = _match(segments, parts)
            if params is None:
                continue
            if route_method == method:
                return Match(handler, params, ())
            if route_method not in allowed:
                allowed.append(route_method)
        return Match(None, {}, tuple(allowed))


def _match(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for segment, part in zip(segments, parts, strict=True):
        if segment.startswith("{") and segment.endswith("}"):
            params[segment[1:-1]] = part
        elif segment != part:
            return None
    return params
