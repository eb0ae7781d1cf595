"""The one retry helper: transient errors are waited out, anything else fails at once."""

import pytest

from proffer_stream.core.retry import Backoff, retry_transient

pytestmark = pytest.mark.unit


class Flaky:
    def __init__(self, failures, error):
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


async def test_transient_errors_are_retried_until_success():
    call = Flaky(3, ConnectionRefusedError("down"))
    result = await retry_transient(
        call, transient=(OSError,), what="test", backoff=Backoff(0.001, 0.002)
    )
    assert (result, call.calls) == ("done", 4)


async def test_other_errors_fail_at_once_and_never_loop():
    call = Flaky(100, ValueError("a query bug"))
    with pytest.raises(ValueError, match="a query bug"):
        await retry_transient(call, transient=(OSError,), what="test", backoff=Backoff(0.001))
    assert call.calls == 1


async def test_attempts_bound_the_retries():
    call = Flaky(100, TimeoutError("slow"))
    with pytest.raises(TimeoutError):
        await retry_transient(
            call, transient=(OSError,), what="test", backoff=Backoff(0.001), attempts=3
        )
    assert call.calls == 3


def test_backoff_doubles_up_to_its_most_and_jitter_draws_down_to_half():
    assert [Backoff(0.5, 4).delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    for retry in range(1, 6):
        ceiling = Backoff(0.5, 4).delay(retry)
        assert ceiling / 2 <= Backoff(0.5, 4, jitter=True).delay(retry) <= ceiling
