"""The one back-off: doubles from `first`, never above `cap`, jittered downwards only."""

from terminal.backoff import Backoff


def test_delays_double_up_to_the_cap_and_reset_starts_again() -> None:
    b = Backoff(first=0.5, cap=3.0, jitter=1.0)
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_jitter_stays_within_the_band_and_huge_failure_counts_do_not_overflow() -> None:
    b = Backoff(first=1.0, cap=2.0, jitter=0.5)
    b.failures = 10_000
    for _ in range(200):
        assert 1.0 <= b.next() <= 2.0
