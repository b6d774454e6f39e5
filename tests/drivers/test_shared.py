"""The pieces every driver shares: the repeat filter and the reopening port."""

from __future__ import annotations

import threading

from drivers.base import DeviceState
from drivers.reopening import DeviceGone, ReopeningPort
from drivers.repeat import RepeatFilter
from tests.conftest import wait_for


def test_per_key_filter_is_a_debounce_whose_window_restarts() -> None:
    f = RepeatFilter(0.08)
    assert f.fresh("1", 10.00)
    assert not f.fresh("1", 10.05)  # bounce
    assert not f.fresh("1", 10.12)  # still bouncing: the window restarted at 10.05
    assert f.fresh("2", 10.13)  # another key has its own clock...
    assert not f.fresh("1", 10.14)  # ...and does not let key 1's bounce through
    assert f.fresh("1", 10.30)


def test_previous_only_filter_counts_only_the_last_input() -> None:
    f = RepeatFilter(1.0, per_key=False)
    assert f.fresh("S1024", 0.0)
    assert not f.fresh("S1024", 0.4)  # a scanner's double send
    assert f.fresh("S2048", 0.5)
    assert f.fresh("S1024", 0.6)  # something else came between: fresh
    assert f.fresh("S1024", 5.0)
    assert f.fresh("S1024", 4.0)  # stamped earlier than the last input: fresh


def test_runs_and_per_call_windows() -> None:
    f = RepeatFilter(0.5, per_key=False)
    assert f.fresh("4", 1.0)
    for t in (1.3, 1.6, 1.9, 2.2):
        assert not f.fresh("4", t)
    assert f.run_started("4") == 1.0  # held since 1.0: a stuck-key check compares with it
    assert f.fresh("4", 3.0) and f.run_started("4") == 3.0  # a pause ends the run
    assert not f.fresh("4", 3.2, window=0.3)
    assert f.fresh("4", 3.6, window=0.3)
    f.forget()
    assert f.run_started("4") is None and f.fresh("4", 3.7)


class FlakyPort(ReopeningPort):
    """Absent for the first `absent_opens` opens, then serves; `boom` makes `_serve` raise a bug."""

    def __init__(self, absent_opens: int) -> None:
        super().__init__("flaky", "/dev/serial/by-id/flaky", reopen_every=0.01)
        self.absent_opens = absent_opens
        self.opens = 0
        self.closes = 0
        self.served = threading.Event()
        self.boom = False
        self.gone = False
        self.failures_seen: list[int] = []

    def _open(self, real: str) -> None:
        self.opens += 1
        self.failures_seen.append(self._backoff.failures)
        if self.opens <= self.absent_opens:
            raise DeviceGone("No such file or directory")

    def _serve(self) -> None:
        if self.boom:
            self.boom = False
            raise RuntimeError("a driver bug")
        if self.gone:
            self.gone = False
            raise DeviceGone("read failed")
        self.served.set()
        self._stop.wait(0.005)

    def _close(self) -> None:
        self.closes += 1


def test_reopening_port_backs_off_while_absent_and_resets_when_open() -> None:
    port = FlakyPort(absent_opens=3)
    states: list[tuple[DeviceState, str]] = []
    port.on_state(lambda st, d: states.append((st, d)))
    port.start()
    try:
        wait_for(port.served.is_set, 10, what="port open after three absent opens")
        assert port.failures_seen == [0, 1, 2, 3]  # each retry waited one more back-off step
        assert port._backoff.failures == 0  # reset by the successful open
        assert states[0] == (
            DeviceState.ABSENT,
            "/dev/serial/by-id/flaky: No such file or directory",
        )
        assert states[-1][0] == DeviceState.OK
        port.gone = True
        wait_for(lambda: port.opens == 5, 10, what="reopened after going away")
        assert (DeviceState.ABSENT, "/dev/serial/by-id/flaky: unplugged") in states
        port.boom = True
        wait_for(lambda: port.opens == 6, 10, what="reopened after a driver bug")
        assert any(st == DeviceState.ERROR for st, _ in states)
        wait_for(lambda: port.state == DeviceState.OK, 10)
        assert port.is_alive()
    finally:
        port.stop()
    assert not port.is_alive() and port.closes >= 3
