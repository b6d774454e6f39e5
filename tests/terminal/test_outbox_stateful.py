"""Hypothesis stateful test of the outbox against a model: stores (some refused by the disk),
PUBACK marks, acks with the right, a wrong or no epoch, acks beyond the last seq, resends,
restarts, expiry under clock jumps, and write faults, in any order.

Checked after every step: nothing reported stored is lost before an ack of its epoch covers it
(or expiry may take it: sent, and kept `retain_days` by the monotonic clock and by the wall
clock); within an epoch, seq grows by exactly 1 and is never given to two events; an event the
disk refused never appears."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from terminal.outbox import Faults, Outbox, StorageError

from .clocks import FakeClock

RETAIN_DAYS = 1
DAY = 86400.0


@dataclass
class Known:
    """What the model knows of one event that store() reported stored."""

    id: str
    epoch: str
    seq: int
    mono: float
    """Monotonic time at the store (the kept time is measured from here)."""
    wall: float
    sent: bool = False


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-sm-"))
        self.clock = FakeClock()
        self.faults = Faults()
        self.ob = self._open()
        self.known: dict[str, Known] = {}
        self.refused: set[int] = set()
        self.n = 0
        self.assigned: dict[tuple[str, int], str] = {}
        """(epoch, seq) -> id: a seq is never given to two events."""
        self.may_be_gone: set[str] = set()

    def _open(self) -> Outbox:
        return Outbox(
            self.dir / "outbox.sqlite",
            device="pad-w03",
            site="main",
            faults=self.faults,
            clock=self.clock,
            reserve_bytes=8192,
        )

    def teardown(self) -> None:
        self.ob.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def _stored(self) -> dict[str, dict]:
        return {e.id: json.loads(e.payload) for e in self.ob.iter_all()}

    def _sync_from_outbox(self) -> None:
        """Learn events the outbox made itself (alerts) and renumbering by a new epoch."""
        for eid, env in self._stored().items():
            k = self.known.get(eid)
            if k is None:
                self.known[eid] = k = Known(eid, env["epoch"], env["seq"], self.clock.mono_s, 0)
                k.wall = self.clock.wall_s
            k.epoch, k.seq = env["epoch"], env["seq"]
            prev = self.assigned.setdefault((k.epoch, k.seq), eid)
            assert prev == eid, f"seq {k.seq} of epoch {k.epoch} given to two events"

    # -- rules ---------------------------------------------------------------------------------

    @rule(fault=st.sampled_from([None, None, None, "once", "always", "io"]))
    def store(self, fault: str | None) -> None:
        self.n += 1
        marker = self.n
        last_before = self.ob.stats().last_seq
        if fault == "once":
            self.faults.fail("store", "full", times=1)
        elif fault == "always":
            self.faults.fail("store", "full")
        elif fault == "io":
            self.faults.fail("store", "io")
        try:
            ev = self.ob.store("rating", {"n": marker})
        except StorageError as e:
            assert fault in ("always", "io"), e
            assert "no transaction" not in str(e)
            self.refused.add(marker)
            self.faults.clear()
            return
        self.faults.clear()
        assert fault in (None, "once")
        assert ev.seq == last_before + 1
        self.known[ev.id] = Known(ev.id, self.ob.epoch, ev.seq, self.clock.mono_s, ev.created)
        self._sync_from_outbox()

    @rule(data=st.data())
    def mark_sent(self, data: st.DataObject) -> None:
        waiting = [e.seq for e in self.ob.iter_all("waiting")]
        if not waiting:
            return
        seqs = data.draw(st.lists(st.sampled_from(waiting), unique=True))
        fail = data.draw(st.booleans())
        if fail:
            self.faults.fail("mark_sent", "io", times=1)
            try:
                self.ob.mark_sent(seqs)
            except StorageError:
                pass
            self.faults.clear()
            assert {e.seq for e in self.ob.iter_all("waiting")} == set(waiting)
            return
        self.ob.mark_sent(seqs, epoch=self.ob.epoch)
        for k in self.known.values():
            if k.epoch == self.ob.epoch and k.seq in seqs:
                k.sent = True

    @rule(data=st.data(), fail=st.booleans())
    def ack_own_epoch(self, data: st.DataObject, fail: bool) -> None:
        last = self.ob.stats().last_seq
        upto = data.draw(st.integers(0, last))
        epoch = self.ob.epoch
        if fail:
            self.faults.fail("site_ack", "io", times=1)
            before = set(self._stored())
            try:
                self.ob.site_ack(upto, epoch)
            except StorageError:
                pass
            self.faults.clear()
            assert set(self._stored()) == before
            return
        self.ob.site_ack(upto, epoch)
        for k in self.known.values():
            if k.epoch == epoch and k.seq <= upto:
                self.may_be_gone.add(k.id)

    @rule(upto=st.integers(0, 2**63 - 1), which=st.sampled_from(["none", "other"]))
    def ack_wrong_epoch(self, upto: int, which: str) -> None:
        epoch = None if which == "none" else "e" * 32
        result = self.ob.site_ack(upto, epoch)
        assert not result.applied and result.dropped == 0
        self._sync_from_outbox()  # a foreign ack may add an alert

    @rule(extra=st.integers(1, 1000))
    def ack_beyond_last_seq(self, extra: int) -> None:
        old = self.ob.epoch
        ids = set(self._stored())
        self.ob.site_ack(self.ob.stats().last_seq + extra, old)
        assert self.ob.epoch != old
        assert ids <= set(self._stored()), "a new epoch carries every stored event over"
        for k in self.known.values():
            k.sent = False
        self._sync_from_outbox()

    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        last = self.ob.stats().last_seq
        if last == 0:
            return
        first = data.draw(st.integers(1, last))
        end = data.draw(st.integers(first, last))
        self.ob.mark_waiting(first, end)
        for k in self.known.values():
            if k.epoch == self.ob.epoch and first <= k.seq <= end:
                k.sent = False

    @rule()
    def restart(self) -> None:
        self.ob.close()
        self.ob = self._open()
        assert self.ob.recovered is None

    @rule(seconds=st.floats(0, 2 * DAY))
    def time_passes(self, seconds: float) -> None:
        self.clock.run(seconds)

    @rule(seconds=st.sampled_from([-10 * 365 * DAY, -DAY, 3 * DAY, 5 * 365 * DAY]))
    def wall_clock_jumps(self, seconds: float) -> None:
        self.clock.jump(seconds)

    @rule()
    def sync_changes(self) -> None:
        self.clock.is_synced = not self.clock.is_synced

    @rule()
    def expire(self) -> None:
        before = set(self._stored())
        self.ob.expire(RETAIN_DAYS)
        gone = before - set(self._stored())
        for eid in gone:
            k = self.known[eid]
            assert k.sent, f"an event never PUBACKed expired (seq {k.seq})"
            assert self.clock.mono_s - k.mono >= RETAIN_DAYS * DAY, "expired before kept long"
            assert self.clock.wall_s - k.wall >= RETAIN_DAYS * DAY
            self.may_be_gone.add(eid)

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def nothing_reported_stored_is_lost(self) -> None:
        stored = self._stored()
        for eid in self.known:
            if eid not in stored:
                assert eid in self.may_be_gone, f"event {eid} lost without an ack or expiry"

    @invariant()
    def a_refused_event_never_appears(self) -> None:
        for env in self._stored().values():
            assert env["data"].get("n") not in self.refused

    @invariant()
    def seq_is_contiguous_in_the_epoch(self) -> None:
        stored = self._stored()
        epoch = self.ob.epoch
        seqs = sorted(e["seq"] for e in stored.values())
        assert all(e["epoch"] == epoch for e in stored.values())
        if seqs:
            assert seqs == list(range(seqs[0], seqs[-1] + 1)) or len(set(seqs)) == len(seqs)
            assert seqs[-1] <= self.ob.stats().last_seq
        mine = sorted(s for (ep, s) in self.assigned if ep == epoch)
        assert mine == list(range(1, len(mine) + 1)), "seq grows by exactly 1 from 1"


OutboxMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOutboxStateful = OutboxMachine.TestCase
