"""The pad's core proven by interleavings: hypothesis drives the real service (machine, outbox,
state file) with prompts (repeated cids included), presses, reasons, time, clerks, pause,
clean restarts and kills at the worst moment, and checks after every step that

- each prompt is closed at most once (a counted rating or a `prompt` event), and every prompt
  a reply returned is closed exactly once when the clock has run out;
- a counted rating carries the prompt id the latest reply (or prompt key) returned, never an
  older, closed or unknown one, and no prompt opens that nobody asked for;
- a repeated cid gets the first reply again and opens nothing;
- misuse (no prompt, too fast, a second press) is never counted: no alert, no reason;
- a rating that asked a reason gets exactly one `reason` event, across restarts;
- nothing stored before a kill is missing afterwards, `seq` has no gap, and every event's data
  matches its model in terminal/payloads.py.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
)

from rating_pad.machine import PadState, Staff
from rating_pad.service import PadService
from terminal.config import parse_config
from terminal.outbox import Outbox, StoredEvent
from terminal.payloads import EVENT_DATA, Envelope

MIN_RESPONSE_MS = 700
STAFF = [
    Staff(staff="E1", name="王芳", title="收费员", token="a" * 32),
    Staff(staff="E2", name="李雷", title="挂号员", token="b" * 32),
]


class Killed(BaseException):
    """The process dies right after the outbox committed an event (before anything else)."""


class OutboxUplink:
    """The uplink without a broker: events go into a real outbox; `kill_after` arms a kill."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.kill_after: str | None = None

    def alert(self, kind: str, severity: str, message: str, **details: Any) -> StoredEvent:
        data = {"kind": kind, "severity": severity, "message": message, **details}
        return self.record("alert", data, alert_kind=kind)

    def record(self, etype: str, data: dict[str, Any], *, alert_kind: str = "") -> StoredEvent:
        ev = self.outbox.store(etype, data, alert_kind=alert_kind)
        if self.kill_after == etype:
            self.kill_after = None
            raise Killed
        return ev


class PadWorld(RuleBasedStateMachine):
    MODE = "prompted"

    def __init__(self) -> None:
        super().__init__()
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # fsync-cheap
        self.dir = Path(tempfile.mkdtemp(prefix="pad-stateful-", dir=base))
        self.cfg = parse_config(
            {
                "device": {
                    "id": "pad-w03",
                    "role": "rating_pad",
                    "site": "main",
                    "data_dir": str(self.dir),
                },
                "window": {"id": "W03", "name": "收费处 3号窗口"},
                "rating": {
                    "mode": self.MODE,
                    "prompt_window_s": 15,
                    "reason_timeout_s": 10,
                    "cooldown_s": 5,
                    "thanks_s": 3,
                    "min_response_ms": MIN_RESPONSE_MS,
                    "voice": False,
                },
            }
        )
        self.world = 0.0  # seconds since the test began (all processes)
        self.process_base = 0.0
        self.replies: dict[str, dict[str, Any]] = {}
        self.issued: list[str] = []  # prompt ids returned by replies or opened by the key
        self.latest: str | None = None
        self.closed_seen: set[str] = set()
        self.known_events: list[dict[str, Any]] = []
        self.outbox: Outbox | None = None
        self.svc: PadService | None = None
        self._boot()

    # -- processes ----------------------------------------------------------------------

    def _boot(self) -> None:
        self.outbox = Outbox(self.dir / "outbox.sqlite", device="pad-w03", site="main")
        self.uplink = OutboxUplink(self.outbox)
        self.process_base = self.world - 1000.0  # a new process: its own monotonic clock
        self.svc = PadService(
            self.cfg,
            self.uplink,
            clock=lambda: self.world - self.process_base,
            wall=lambda: 1.9e9 + self.world,
        )
        self.svc.machine.set_directory(STAFF)
        self.svc.restore()
        self._observe()

    def _die(self) -> None:
        assert self.outbox is not None
        self.outbox.close()
        self.svc = None

    def _step(self, fn: Any) -> None:
        """Queue an input, run it, and on an injected kill restart like systemd would."""
        assert self.svc is not None
        fn(self.svc)
        try:
            self.svc.run_pending()
        except Killed:
            self._die()
            self.world += 2.0
            self._boot()
        self._observe()

    def _observe(self) -> None:
        m = self.svc.machine if self.svc else None
        if m is None:
            return
        for p in (m.deferred, m.open):
            if p is not None and p.id not in self.issued:
                self.issued.append(p.id)
                self.latest = p.id

    # -- rules --------------------------------------------------------------------------

    @rule(ticket=st.sampled_from([None, "A1", "B2"]))
    def prompt(self, ticket: str | None) -> None:
        self._prompt(f"c{len(self.replies) + 1}", ticket)

    @rule(ticket=st.sampled_from([None, "A1"]))
    def prompt_again(self, ticket: str | None) -> None:
        """(A second rule with the same body: prompts are the heart of it.)"""
        self._prompt(f"c{len(self.replies) + 1}", ticket)

    @rule(index=st.integers(0, 20))
    def repeated_cid(self, index: int) -> None:
        """The queue system (or QoS 1) sends a cid the pad has answered before."""
        if self.replies:
            cids = sorted(self.replies)
            self._prompt(cids[index % len(cids)], None)

    def _prompt(self, cid: str, ticket: str | None) -> None:
        got: list[dict[str, Any]] = []
        before = len(self.events())
        repeated = cid in self.replies
        body = {"cid": cid} | ({"ticket": ticket} if ticket else {})
        if repeated:
            first = self.replies[cid]
            old_ticket = (first.get("result") or {}).get("ticket")
            body = {"cid": cid} | ({"ticket": old_ticket} if old_ticket else {})

        def reply(ok: bool, result: Any, error: Any) -> None:
            got.append({"ok": ok, "result": result, "error": error})

        known = set(self.issued)
        self._step(lambda s: s.on_command("prompt", body, reply))
        if not got:
            self.replies.setdefault(cid, {"killed": True})
            return  # killed before replying
        (r,) = got
        if repeated and "killed" not in self.replies[cid]:
            assert r == self.replies[cid], "a repeated cid must get the first reply again"
            assert len(self.events()) == before, "a repeated cid must open (and close) nothing"
            return
        self.replies[cid] = r
        if r["ok"]:
            pid = r["result"]["prompt"]
            assert pid not in known, "a new cid must get a new prompt"
            if pid not in self.issued:
                self.issued.append(pid)
            self.latest = pid
            assert r["result"]["ticket"] == body.get("ticket")

    @rule(key=st.sampled_from(["1", "1", "2", "4", "P"]))
    def press(self, key: str) -> None:
        self._press(key, 0.15)  # past the auto-repeat guard

    @rule(key=st.sampled_from(["1", "1", "3", "4"]))
    def patient_rates(self, key: str) -> None:
        self._press(key, 1.0)  # read the screen first

    @rule(key=st.sampled_from(["1", "2", "4"]))
    def patient_answers(self, key: str) -> None:
        """(Same as patient_rates: a key pressed after reading, e.g. a reason.)"""
        self._press(key, 1.0)

    def _press(self, key: str, after: float) -> None:
        self.world += after
        self._step(lambda s: None)  # the clock first: what the press itself would see
        m = self.svc.machine
        state, open_p = m.state, m.open
        elapsed_ms = (  # rounded to whole milliseconds, as the pad does
            round((self.svc.clock() - open_p.opened) * 1000)
            if open_p is not None and open_p.opened is not None
            else None
        )
        before = len(self.events())
        self._step(lambda s: s.press(key))
        new = [e for e in self.events()[before:] if e["type"] == "rating"]
        if key == "P" or state in (PadState.PAUSED, PadState.CLOSED, PadState.REASON):
            assert new == [], f"a {key} press in {state} is no rating"
            return
        assert len(new) <= 1
        if state == PadState.PROMPTED and open_p is not None:
            (r,) = new
            assert r["data"]["prompt"] == open_p.id
            assert r["data"]["misuse"] is (elapsed_ms is not None and elapsed_ms < MIN_RESPONSE_MS)
        elif self.MODE == "prompted":
            assert all(r["data"]["misuse"] for r in new), "no open prompt: misuse"
        else:
            assert all(r["data"]["prompt"] is None for r in new), "no open prompt: no id"

    @rule(score=st.sampled_from([1, 3, 4]), after=st.sampled_from([0.02, 1.0]))
    def touch_rating(self, score: int, after: float) -> None:
        """A rating button on the screen: a patient's tap, or a second finger right after.
        On the reason screen there are no rating buttons: a touch that arrives then was made
        on the rating screen and must not become a reason (or a rating)."""
        self.world += after
        self._step(lambda s: None)
        state = self.svc.machine.state
        before = len(self.events())
        self._step(lambda s: s.touch(score))
        new = self.events()[before:]
        if state in (PadState.REASON, PadState.PAUSED, PadState.CLOSED):
            assert [e["type"] for e in new if e["type"] in ("rating", "reason")] == [], (
                f"a rating button touched in {state}"
            )

    @rule(index=st.integers(0, 3))
    def touch_reason(self, index: int) -> None:
        self.world += 0.7
        self._step(lambda s: s.choose_reason(index))

    @rule(dt=st.sampled_from([0.2, 0.5, 1.0, 3.0, 8.0, 16.0]))
    def wait(self, dt: float) -> None:
        self.world += dt
        self._step(lambda s: None)

    @rule(who=st.sampled_from([0, 1, None]))
    def clerk(self, who: int | None) -> None:
        """A clerk signs in (or changes), or the one on duty signs out."""
        cid = f"s{self.world}"
        body = (
            {"cid": cid, "action": "sign_out"}
            if who is None
            else {"cid": cid, "action": "sign_in", "staff": STAFF[who].staff}
        )
        self._step(lambda s: s.on_command("staff", body, lambda *a: None))

    @rule()
    def pause_key(self) -> None:
        self.world += 0.15
        self._step(lambda s: s.press("S"))

    @rule(clean=st.booleans(), gap=st.sampled_from([0.5, 3.0, 30.0]))
    def restart(self, clean: bool, gap: float) -> None:
        """systemd restarts the pad (clean: SIGTERM, what stop() does; else kill -9)."""
        assert self.svc is not None
        if clean:
            try:
                self.svc._apply(self.svc.machine.flush(self.svc.clock()))
            except Killed:
                pass  # the stop itself was killed
        self._die()
        self.world += gap
        self._boot()

    @rule(etype=st.sampled_from(["rating", "alert", "reason", "prompt", "staff"]))
    def kill_after_next(self, etype: str) -> None:
        """The next `etype` event is the last thing this process does."""
        self.uplink.kill_after = etype

    # -- what was stored -----------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        assert self.outbox is not None
        return [json.loads(e.payload) for e in self.outbox.iter_all("all")]

    @invariant()
    def everything_holds(self) -> None:
        evs = self.events()
        assert evs[: len(self.known_events)] == self.known_events, "stored events changed"
        self.known_events = evs
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
        by_id = {e["id"]: e for e in evs}
        closes: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for i, e in enumerate(evs):
            Envelope.model_validate(e)
            EVENT_DATA[e["type"]].model_validate(e["data"])
            d = e["data"]
            if e["type"] == "rating":
                assert d["prompt"] is None or d["prompt"] in self.issued, "an unknown prompt id"
                if d["misuse"]:
                    assert not d["reason_asked"]
                    assert (
                        i + 1 == len(evs)
                        or evs[i + 1]["type"] != "alert"
                        or (evs[i + 1]["data"].get("rating") != e["id"])
                    )
                elif d["prompt"]:
                    closes[d["prompt"]] = closes.get(d["prompt"], 0) + 1
                if not d["misuse"] and d["score"] <= 1:
                    nxt = evs[i + 1] if i + 1 < len(evs) else None
                    assert nxt is None or (
                        nxt["type"] == "alert" and nxt["data"]["rating"] == e["id"]
                    ), "the dissatisfied alert follows its rating at once"
            elif e["type"] == "prompt":
                assert d["prompt"] in self.issued
                closes[d["prompt"]] = closes.get(d["prompt"], 0) + 1
            elif e["type"] == "reason":
                rated = by_id.get(d["rating"])
                assert rated is not None and rated["data"]["reason_asked"]
                reasons[d["rating"]] = reasons.get(d["rating"], 0) + 1
        assert all(n == 1 for n in closes.values()), f"a prompt closed twice: {closes}"
        assert all(n == 1 for n in reasons.values()), "two reasons for one rating"
        for pid in self.issued:
            if pid in closes:
                self.closed_seen.add(pid)
        m = self.svc.machine if self.svc else None
        if m is not None:
            if m.open is not None:
                assert m.open.id == self.latest and m.open.id not in closes, "a phantom prompt"
            if m.deferred is not None:
                assert m.deferred.id == self.latest and m.deferred.id not in closes

    @invariant()
    def every_rating_carries_the_clerk_on_duty(self) -> None:
        """The clerk on duty is the one the last `staff` event put there (kills between a
        staff event and the state file included): a rating, its reason and a pause carry
        that clerk, never the one who signed out."""
        on_duty: str | None = None
        rated_by: dict[str, str | None] = {}
        for e in self.events():
            d = e["data"]
            if e["type"] == "staff":
                if d["action"] == "sign_in":
                    on_duty = d["staff"]
                elif d["action"] == "sign_out":
                    assert d["staff"] == on_duty, "signed out a clerk who was not on duty"
                    on_duty = None
                else:
                    assert d["staff"] == on_duty, f"{d['action']} by a clerk not on duty"
            elif e["type"] == "rating":
                assert d["staff"] == on_duty, f"rating for {d['staff']}, on duty {on_duty}"
                rated_by[e["id"]] = d["staff"]
            elif e["type"] == "reason" and d["rating"] in rated_by:
                assert d["staff"] == rated_by[d["rating"]], "a reason names another clerk"

    @invariant()
    def a_counted_rating_carries_the_latest_prompt(self) -> None:
        # checked incrementally: the newest counted prompted rating names the newest prompt
        # that existed when it was pressed (older prompts were closed before)
        evs = self.events()
        issued_order = {pid: i for i, pid in enumerate(self.issued)}
        newest_before = -1
        for e in evs:
            d = e["data"]
            pid = d.get("prompt")
            if pid is None or pid not in issued_order:
                continue
            if e["type"] == "rating" and not d["misuse"]:
                assert issued_order[pid] >= newest_before, "a rating carries an older prompt"
            newest_before = max(newest_before, issued_order[pid])

    def teardown(self) -> None:
        try:
            if self.svc is not None:
                self.uplink.kill_after = None
                # the clock runs out: every prompt and reason question closes
                for _ in range(6):  # one timeout per step: reason, thank-you, deferred prompt
                    self.world += 100.0
                    self.svc.run_pending()
                evs = self.events()
                closed = {
                    e["data"]["prompt"]
                    for e in evs
                    if (e["type"] == "prompt")
                    or (e["type"] == "rating" and not e["data"]["misuse"] and e["data"]["prompt"])
                }
                missing = [p for p in self.issued if p not in closed]
                assert not missing, f"prompts never closed: {missing}"
                asked = {
                    e["id"] for e in evs if e["type"] == "rating" and e["data"]["reason_asked"]
                }
                answered = {e["data"]["rating"] for e in evs if e["type"] == "reason"}
                assert asked == answered, "a rating that asked a reason has no reason event"
                self._die()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


DEEP = int(os.environ.get("CARETERM_STATEFUL_EXAMPLES", "0"))
"""More examples for a deep run (e.g. 3000); the suite's default keeps the test near 15 s."""

PadWorld.TestCase.settings = settings(
    max_examples=DEEP or 200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPadWorld = PadWorld.TestCase


class FreePadWorld(PadWorld):
    """The same in free mode: every press rates (misuse within cooldown_s), prompts are
    carried and closed the same way."""

    MODE = "free"


FreePadWorld.TestCase.settings = settings(
    max_examples=DEEP or 60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFreePadWorld = FreePadWorld.TestCase


# -- interleavings the random runs reach rarely, pinned ------------------------------------------


def _pinned_world(*steps: Any) -> PadWorld:
    """A prompted pad: `steps` run in order (each `(rule name, *args)`); checks every invariant."""
    w = PadWorld()
    try:
        for name, *args in steps:
            getattr(w, name)(*args)
            w.everything_holds()
            w.every_rating_carries_the_clerk_on_duty()
    except BaseException:
        w.teardown()
        raise
    return w


def test_a_kill_right_after_a_sign_in_keeps_the_clerk_on_duty() -> None:
    w = _pinned_world(("kill_after_next", "staff"), ("clerk", 0), ("patient_rates", "4"))
    try:
        assert w.svc.machine.staff is not None and w.svc.machine.staff.staff == "E1"
        assert w.svc.machine.staff.name == "王芳"  # from the directory
    finally:
        w.teardown()


def test_a_kill_right_after_a_sign_out_or_a_clerk_change_never_rates_the_clerk_who_left() -> None:
    w = _pinned_world(
        ("clerk", 0),
        ("kill_after_next", "staff"),
        ("clerk", 1),  # E1 out (stored, then the kill), E2 in never happened
        ("prompt", "A1"),
        ("patient_rates", "1"),
    )
    try:
        assert w.svc.machine.state == PadState.CLOSED and w.svc.machine.staff is None
        w.clerk(1)
        w.prompt("B2")
        w.patient_rates("3")
        w.every_rating_carries_the_clerk_on_duty()
        assert [e["data"]["staff"] for e in w.events() if e["type"] == "rating"] == ["E2"]
    finally:
        w.teardown()


def test_a_kill_right_after_a_pause_keeps_the_window_paused() -> None:
    w = _pinned_world(("clerk", 0), ("kill_after_next", "staff"), ("pause_key",))
    try:
        assert w.svc.machine.state == PadState.PAUSED
        w.prompt("A1")
        assert w.svc.machine.state == PadState.PAUSED, "a paused window opens no prompt"
        w.restart(False, 3.0)  # the state file now says paused itself
        assert w.svc.machine.state == PadState.PAUSED
    finally:
        w.teardown()


def test_a_rating_button_touched_on_the_reason_screen_is_no_reason() -> None:
    w = _pinned_world(("clerk", 0), ("prompt", "A1"), ("patient_rates", "1"))
    try:
        assert w.svc.machine.state == PadState.REASON
        w.touch_rating(3, 0.02)  # a second finger
        w.touch_rating(4, 1.0)  # a tap the core thread sees late
        w.everything_holds()
    finally:
        w.teardown()
