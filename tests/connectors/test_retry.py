"""The one retry policy: only retriable errors, bounded attempts, the wait strategy plugged in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from canonical.errors import AuthError, RateLimitedError, RetriableError
from connectors.retry import Doubling, RetryAfter, UntilNextWindow, jittered, retrying


def _fails(errors: list[Exception]) -> Callable[[], str]:
    calls = iter(errors)

    def fn() -> str:
        err = next(calls, None)
        if err is not None:
            raise err
        return "ok"

    return fn


def _constant(seconds: float) -> RetryAfter:
    return RetryAfter(lambda _state: seconds, cap=300.0)


def test_retriable_errors_are_retried_with_the_given_waits_then_succeed() -> None:
    waits: list[float] = []
    policy = retrying(4, wait=_constant(2.0), what="test", sleep=waits.append)
    fn = _fails([RetriableError("down"), RetriableError("down")])
    assert policy(fn) == "ok"
    assert waits == [2.0, 2.0]


def test_the_last_error_surfaces_unchanged_after_the_last_attempt() -> None:
    waits: list[float] = []
    last = RetriableError("still down")
    policy = retrying(2, wait=_constant(1.0), what="test", sleep=waits.append)
    with pytest.raises(RetriableError) as info:
        policy(_fails([RetriableError("down"), last]))
    assert info.value is last
    assert waits == [1.0]


def test_other_errors_are_never_retried() -> None:
    waits: list[float] = []
    policy = retrying(5, wait=_constant(1.0), what="test", sleep=waits.append)
    with pytest.raises(AuthError):
        policy(_fails([AuthError("bad key")]))
    assert waits == []


def test_retry_after_is_honoured_and_capped() -> None:
    waits: list[float] = []
    policy = retrying(3, wait=RetryAfter(lambda _s: 1.0, cap=30.0), what="t", sleep=waits.append)
    fn = _fails([RateLimitedError("429", retry_after=7.0), RateLimitedError("429", retry_after=99)])
    policy(fn)
    assert waits == [7.0, 30.0]


def test_a_429_without_retry_after_waits_until_the_next_fixed_window() -> None:
    waits: list[float] = []
    window = UntilNextWindow(lambda _s: 0.5, window=60.0, cap=120.0, clock=lambda: 1_000_040.0)
    wait = RetryAfter(lambda _s: 0.5, cap=120.0, rate_limited=window)
    policy = retrying(3, wait=wait, what="t", sleep=waits.append)
    policy(_fails([RateLimitedError("429"), RetriableError("503")]))
    # 1_000_040 is 20 s into a minute: 40 s to the next window; a 503 waits the fallback.
    assert waits == [pytest.approx(40.01), 0.5]


def test_doubling_waits_double_from_the_base_up_to_the_cap_with_jitter() -> None:
    waits: list[float] = []
    policy = retrying(5, wait=Doubling(1.0, 3.0), what="t", sleep=waits.append)
    policy(_fails([RetriableError("x")] * 4))
    for got, full in zip(waits, [1.0, 2.0, 3.0, 3.0], strict=True):
        assert full * 0.5 <= got <= full


def test_jittered_waits_stay_under_the_cap() -> None:
    waits: list[float] = []
    policy = retrying(6, wait=jittered(1.0, 4.0), what="t", sleep=waits.append)
    policy(_fails([RetriableError("x")] * 5))
    assert len(waits) == 5
    assert all(0 <= w <= 4.0 for w in waits)
