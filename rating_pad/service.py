"""Runs the pad: one core thread feeds the state machine from keys, cards, commands and the clock,
makes every resulting event durable through the uplink, and tells the screen what to show."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from rating_pad.machine import PadMachine, PadState, PadView, Record, Staff
from terminal.config import DeviceConfig
from terminal.outbox import StorageError
from terminal.uplink import Uplink

log = logging.getLogger("careterm.pad")

TICK_S = 0.1
ViewListener = Callable[[PadView], None]


class PadService:
    """Thread-safe inputs (`press`, `submit`, ...); the machine itself runs on one thread."""

    def __init__(self, cfg: DeviceConfig, uplink: Uplink) -> None:
        self.cfg = cfg
        self.uplink = uplink
        self.machine = PadMachine(cfg)
        self._inbox: queue.Queue[Callable[[], None]] = queue.Queue()
        self._listeners: list[ViewListener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_view_key: Any = None
        self.heartbeat = time.monotonic()
        self.storage_ok = True

    # -- wiring ---------------------------------------------------------------------------

    def on_view(self, fn: ViewListener) -> None:
        self._listeners.append(fn)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pad-core", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(lambda: None)
        if self._thread is not None:
            self._thread.join(3.0)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, fn: Callable[[PadMachine, float], list[Record]]) -> None:
        """Run `fn(machine, now)` on the core thread and record what it returns."""
        self._inbox.put(lambda: self._apply(fn(self.machine, time.monotonic())))

    # -- inputs from any thread -------------------------------------------------------------

    def press(self, key: str, t: float | None = None) -> None:
        when = time.monotonic() if t is None else t
        self._inbox.put(lambda: self._apply(self.machine.key(key, when)))

    def choose_reason(self, index: int) -> None:
        self.submit(lambda m, t: m.choose_reason(index, t))

    def staff_card(self, token: str) -> None:
        self.submit(lambda m, t: m.staff_card(token, t))

    def on_staff_directory(self, topic: str, payload: bytes) -> None:
        """Retained `R/S/staff`: [{"staff","name","title","token","photo"}]."""
        try:
            rows = json.loads(payload) if payload else []
            staff = [Staff(staff=str(r["staff"]), name=str(r.get("name") or ""),
                           title=str(r.get("title") or ""), photo=r.get("photo"),
                           token=str(r.get("token") or "")) for r in rows]
        except (ValueError, TypeError, KeyError) as e:
            log.warning("staff directory on %s ignored: %s", topic, e)
            return
        self._inbox.put(lambda: (self.machine.set_directory(staff), self._render(force=True)))

    def on_command(self, name: str, body: dict[str, Any],
                   reply: Callable[[bool, dict[str, Any] | None, str | None], None]) -> None:
        """MQTT commands (link thread): checked here, run on the core thread, then replied."""
        if name == "prompt":
            def run(m: PadMachine, t: float) -> list[Record]:
                out = m.prompt(t, body.get("ticket"))
                if m.state == PadState.PROMPTED:
                    reply(True, {"state": m.state.value}, None)
                else:
                    reply(False, None, f"cannot prompt while {m.state.value}")
                return out
        elif name == "staff":
            action, staff_no = body.get("action"), body.get("staff")
            if action not in ("sign_in", "sign_out"):
                reply(False, None, "action must be sign_in or sign_out")
                return
            if action == "sign_in" and not (isinstance(staff_no, str) and staff_no):
                reply(False, None, "sign_in needs staff (a staff number)")
                return

            def run(m: PadMachine, t: float) -> list[Record]:
                if action == "sign_out":
                    out = m.sign_out(t)
                else:
                    who = m.directory.get(staff_no) or Staff(staff=staff_no)
                    out = m.sign_in(who, t)
                reply(True, {"state": m.state.value,
                             "staff": m.staff.staff if m.staff else None}, None)
                return out
        elif name in ("pause", "resume"):
            def run(m: PadMachine, t: float) -> list[Record]:
                out = m.pause(t) if name == "pause" else m.resume(t)
                reply(True, {"state": m.state.value}, None)
                return out
        else:
            reply(False, None, f"unknown command {name!r}")
            return
        self.submit(run)

    # -- the core thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._inbox.get(timeout=TICK_S)
            except queue.Empty:
                job = None
            self.heartbeat = time.monotonic()
            try:
                if job is not None:
                    job()
                self._apply(self.machine.tick(time.monotonic()))
            except Exception:
                log.exception("pad: an input could not be handled")

    def _apply(self, records: list[Record]) -> None:
        for rec in records:
            try:
                ev = self.uplink.record(rec.etype, rec.data, alert_kind=rec.alert_kind)
                self.storage_ok = True
                log.info("pad: %s seq %d stored", rec.etype, ev.seq)
            except StorageError:
                # Not durable, so no "thank you": the screen shows the fault instead.
                self.storage_ok = False
        self._render()

    def _render(self, force: bool = False) -> None:
        view = self.machine.view(time.monotonic())
        if not self.storage_ok:
            view.message = "storage_error"
        key = (view.state, view.staff.staff if view.staff else None, view.score, view.message,
               None if view.seconds_left is None else int(view.seconds_left))
        if key == self._last_view_key and not force:
            return
        self._last_view_key = key
        for fn in list(self._listeners):
            try:
                fn(view)
            except Exception:
                log.exception("pad: a view listener failed")
