"""The one retry helper: transient errors are waited out, anything else fails at once."""

import pytest

from proffer_stream.core.retry import retry_transient

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
        call, transient=(OSError,), what="test", first_delay=0.001, max_delay=0.002
    )
    assert (result, call.calls) == ("done", 4)


async def test_other_errors_fail_at_once_and_never_loop():
    call = Flaky(100, ValueError("a query bug"))
    with pytest.raises(ValueError, match="a query bug"):
        await retry_transient(call, transient=(OSError,), what="test", first_delay=0.001)
    assert call.calls == 1


async def test_attempts_bound_the_retries():
    call = Flaky(100, TimeoutError("slow"))
    with pytest.raises(TimeoutError):
        await retry_transient(
            call, transient=(OSError,), what="test", first_delay=0.001, attempts=3
        )
    assert call.calls == 3
