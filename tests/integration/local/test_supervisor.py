"""The supervisor restarts a child that dies, with backoff, and gives up when it keeps dying."""

import time

import pytest

from proffer_stream.local.supervisor import GaveUp, RestartPolicy, Supervisor

pytestmark = pytest.mark.integration


def test_backoff_doubles_up_to_its_bound():
    policy = RestartPolicy(first_backoff=0.5, max_backoff=4)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_a_child_that_keeps_dying_is_restarted_then_given_up(tmp_path):
    policy = RestartPolicy(max_restarts=2, window_seconds=60, first_backoff=0.01)
    supervisor = Supervisor(tmp_path, restart=policy)
    supervisor.start("--version", {}, name="short-lived")  # exits at once
    deadline = time.monotonic() + 30
    with pytest.raises(GaveUp, match="short-lived exited with code 0 and died 2 times"):
        while time.monotonic() < deadline:
            supervisor.watch()
            time.sleep(0.05)
    assert len(supervisor.children["short-lived"].restarts) == 2
    assert "proffer-stream 0.1.0" in supervisor.logs()


def test_without_a_policy_a_dead_child_is_an_error_at_once(tmp_path):
    supervisor = Supervisor(tmp_path)
    child = supervisor.start("--version", {})
    child.process.wait(30)
    with pytest.raises(GaveUp, match="exited with code 0"):
        supervisor.watch()
