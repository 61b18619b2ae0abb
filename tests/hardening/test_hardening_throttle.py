"""HelloThrottle (sans-IO): the delays, their serialization per address, the reset, and the
bounded memory of addresses."""
import pytest

from payswitch.switch.auth import HelloThrottle


def test_delays_double_up_to_the_maximum_and_queue_per_address():
    throttle = HelloThrottle(0.1, 0.5)
    dues = [throttle.failed("10.0.0.1", 100.0)[1] - 100.0 for _ in range(5)]
    # all at the same instant: each waits for the one before (0.1, +0.2, +0.4, +0.5, +0.5)
    assert dues == pytest.approx([0.1, 0.3, 0.7, 1.2, 1.7])
    assert throttle.failed("10.0.0.2", 100.0) == (1, pytest.approx(100.1))  # another address


def test_a_failure_after_the_queue_drained_waits_only_its_own_delay():
    throttle = HelloThrottle(0.1, 5.0)
    throttle.failed("a", 0.0)
    count, due = throttle.failed("a", 10.0)
    assert (count, due) == (2, pytest.approx(10.2))


def test_success_resets_the_count_but_not_the_queue():
    throttle = HelloThrottle(0.1, 5.0)
    for _ in range(4):
        _, due = throttle.failed("a", 0.0)
    throttle.succeeded("a")
    count, next_due = throttle.failed("a", 0.0)
    assert count == 1 and next_due == pytest.approx(due + 0.1)


def test_zero_base_disables_the_delay():
    throttle = HelloThrottle(0.0, 5.0)
    assert [throttle.failed("a", 7.0)[1] for _ in range(3)] == [7.0, 7.0, 7.0]


def test_addresses_are_bounded_and_forgotten():
    throttle = HelloThrottle(0.1, 5.0, max_peers=3, forget_after_s=60)
    for n in range(5):
        throttle.failed(f"10.0.0.{n}", float(n))
    assert len(throttle) == 3  # the longest quiet went first
    assert throttle.failed("10.0.0.0", 5.0)[0] == 1
    throttle.forget_quiet(63.5)  # 10.0.0.3 (failed at 3) is 60.5 s quiet; 10.0.0.4 not yet
    assert len(throttle) == 2
    throttle.forget_quiet(1000.0)
    assert len(throttle) == 0
