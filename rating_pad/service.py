"""Runs the pad: one core thread feeds the state machine from keys, cards, commands and the clock,
makes every resulting event durable through the uplink, and tells the screen what to show."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rating_pad.machine import PadMachine, PadState, PadView, Record, Staff
from terminal.config import DeviceConfig
from terminal.core import CoreLoop
from terminal.documents import DocumentStore
from terminal.envelope import alert_data
from terminal.outbox import StorageError
from terminal.payloads import Command, StaffDirectory
from terminal.uplink import Uplink

log = logging.getLogger("careterm.pad")

TICK_S = 0.1
RETRY_S = 5.0
"""How often events that could not be stored are tried again."""
MAX_UNSTORED = 1000
MAX_PHOTO_CHARS = 2_000_000
MAX_STAFF_NO = 32
STATE_FILE = "pad_state.json"

ViewListener = Callable[[PadView], None]
Reply = Callable[[bool, dict[str, Any] | None, str | None], None]
# A command's work on the core thread: (events to record, ok, result or error message).
CommandRun = Callable[[PadMachine, float], tuple[list[Record], bool, Any]]


def _staff_number(v: Any) -> str | None:
    if isinstance(v, str) and 0 < len(v) <= MAX_STAFF_NO and v.isprintable() and v.strip() == v:
        return v
    return None


def parse_staff_directory(payload: bytes) -> list[Staff]:
    """Rows of the retained `R/S/staff`; bad rows are skipped with a log line. Raises ValueError
    when the payload is not a JSON list at all."""
    rows = json.loads(payload) if payload else []
    if not isinstance(rows, list):
        raise ValueError("not a JSON list")
    out: list[Staff] = []
    for i, r in enumerate(rows):
        no = _staff_number(r.get("staff")) if isinstance(r, dict) else None
        if no is None:
            log.warning('staff directory: row %d has no valid "staff" number; skipped', i)
            continue
        photo = r.get("photo")
        if photo is not None and not (isinstance(photo, str) and len(photo) <= MAX_PHOTO_CHARS):
            log.warning("staff directory: %s has an unusable photo; shown without", no)
            photo = None
        token = r.get("token")
        out.append(
            Staff(
                staff=no,
                name=str(r.get("name") or "")[:32],
                title=str(r.get("title") or "")[:32],
                photo=photo,
                token=token if isinstance(token, str) else "",
            )
        )
    return out


class PadService:
    """Thread-safe inputs (`press`, `touch`, `submit`, ...); the machine runs on one thread."""

    def __init__(
        self, cfg: DeviceConfig, uplink: Uplink, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cfg = cfg
        self.uplink = uplink
        self.clock = clock
        self.machine = PadMachine(cfg)
        self.state_file = cfg.data_dir / STATE_FILE
        self.core = CoreLoop("pad-core", tick=self._tick, tick_s=TICK_S)
        self.staff_doc = DocumentStore("staff", cfg.data_dir, alert=uplink.alert)
        self._listeners: list[ViewListener] = []
        self._last_view_key: Any = None
        self._unstored: list[Record] = []
        self._retry_at = 0.0
        self._saved: Any = None
        self.last_view: PadView | None = None
        self._devices_down: set[str] = set()

    @property
    def heartbeat(self) -> float:
        return self.core.heartbeat

    @property
    def handled(self) -> int:
        """Inputs taken off the queue so far (tests wait on it; a stalled core shows here)."""
        return self.core.handled

    @property
    def storage_ok(self) -> bool:
        return not self._unstored

    # -- wiring ---------------------------------------------------------------------------

    def on_view(self, fn: ViewListener) -> None:
        """`fn(view)` on the core thread at every visible change (a UI must hop threads)."""
        self._listeners.append(fn)

    def start(self) -> None:
        self._restore()
        self.core.start()
        self.core.put(lambda: self._use_staff(self.staff_doc.load() is not None))
        self.core.put(lambda: self._render(force=True))

    def stop(self) -> None:
        """Record what is pending (a rating waiting for its reason), then stop the core."""

        def last_job() -> None:
            self._apply(self.machine.flush(self.clock()))
            if self._unstored:
                log.error(
                    "pad: stopping with %d events the disk refused; they are lost",
                    len(self._unstored),
                )

        self.core.stop(last_job)

    def is_alive(self) -> bool:
        return self.core.is_alive()

    def submit(self, fn: Callable[[PadMachine, float], list[Record]]) -> None:
        """Run `fn(machine, now)` on the core thread and record what it returns."""
        self.core.put(lambda: self._apply(fn(self.machine, self.clock())))

    def refresh(self) -> None:
        """Send the current view to the listeners again (a new screen attached)."""
        self.core.put(lambda: self._render(force=True))

    # -- inputs from any thread -------------------------------------------------------------

    def press(self, key: str, t: float | None = None) -> None:
        """A keypad key by name; `t` is the driver's monotonic time of the press."""
        when = self.clock() if t is None else t
        self.core.put(lambda: self._apply(self.machine.key(key, when)))

    def touch(self, score: int) -> None:
        """A rating button on the screen."""
        self.submit(lambda m, t: m.touch(score, t))

    def choose_reason(self, index: int) -> None:
        """A reason button on the screen (0-based)."""
        self.submit(lambda m, t: m.choose_reason(index, t))

    def staff_card(self, token: str) -> None:
        self.submit(lambda m, t: m.staff_card(token, t))

    def device_state(self, kind: str, state: str, detail: str) -> None:
        """The keypad ("buttons") or card reader ("card_reader") changed state (driver thread).
        One alert when it fails (unplugged, erroring), one when it works again."""
        self.submit(lambda m, t: self._device_alert(kind, state, detail))

    def _device_alert(self, kind: str, state: str, detail: str) -> list[Record]:
        what = "keypad" if kind == "buttons" else "staff card reader"
        if state in ("absent", "error") and kind not in self._devices_down:
            self._devices_down.add(kind)
            return [
                Record(
                    "alert",
                    alert_data(
                        kind,
                        "warning",
                        f"{what} {state}: {detail} (check the cable; it is picked "
                        "up again when it comes back)",
                        state=state,
                        detail=detail,
                    ),
                    kind,
                )
            ]
        if state == "ok" and kind in self._devices_down:
            self._devices_down.discard(kind)
            return [
                Record(
                    "alert",
                    alert_data(
                        kind, "info", f"{what} works again: {detail}", state=state, detail=detail
                    ),
                    kind,
                )
            ]
        return []

    def on_staff_directory(self, topic: str, payload: bytes) -> None:
        """Retained `R/S/staff` (link thread): validated and kept by terminal.documents on the
        core thread; a bad one keeps the last good one and raises a `document` alert."""
        self.core.put(lambda: self._use_staff(self.staff_doc.offer(payload).accepted))

    def _use_staff(self, changed: bool) -> None:
        doc = self.staff_doc.current
        if not changed or not isinstance(doc, StaffDirectory):
            return
        staff = parse_staff_directory(doc.model_dump_json().encode())
        log.info("staff directory: %d clerks", len(staff))
        self.machine.set_directory(staff)
        self._render(force=True)

    # -- commands ---------------------------------------------------------------------------

    def on_command(self, name: str, body: Command, reply: Reply) -> None:
        """MQTT commands (link thread): checked here, run on the core thread, replied after the
        events they cause are stored. A rejected command changes nothing."""
        run: CommandRun
        if name == "prompt":
            ticket = getattr(body, "ticket", None)
            if ticket is not None and not (
                isinstance(ticket, str | int)
                and not isinstance(ticket, bool)
                and len(str(ticket)) <= 64
            ):
                reply(False, None, "ticket must be a string or number (at most 64 characters)")
                return
            run = self._cmd_prompt(ticket)
        elif name == "staff":
            action = getattr(body, "action", None)
            if action not in ("sign_in", "sign_out"):
                reply(False, None, 'action must be "sign_in" or "sign_out"')
                return
            raw = getattr(body, "staff", None)
            staff_no = _staff_number(raw)
            if staff_no is None and (raw is not None or action == "sign_in"):
                reply(
                    False,
                    None,
                    f"staff must be a staff number (1..{MAX_STAFF_NO} printable "
                    'characters), e.g. "E1024"',
                )
                return
            run = (
                self._cmd_sign_in(staff_no) if action == "sign_in" else self._cmd_sign_out(staff_no)
            )
        elif name in ("pause", "resume"):
            run = self._cmd_pause(name)
        else:
            reply(
                False,
                None,
                f"unknown command {name!r} (a pad takes prompt, staff, pause, "
                "resume, ping, resend)",
            )
            return
        self.core.put(lambda: self._command(run, reply))

    def _command(self, run: CommandRun, reply: Reply) -> None:
        now = self.clock()
        self._apply(self.machine.tick(now))
        records, ok, result = run(self.machine, now)
        stored = self._apply(records)
        if ok:
            result = dict(result)
            result["state"] = self.machine.state.value
            if records and not stored:
                result["stored"] = False
            reply(True, result, None)
        else:
            reply(False, None, result)

    @staticmethod
    def _cmd_prompt(ticket: Any) -> CommandRun:
        def run(m: PadMachine, t: float) -> tuple[list[Record], bool, Any]:
            why = m.can_prompt()
            if why:
                return [], False, f"cannot prompt: {why}"
            out = m.prompt(t, ticket)
            if m.deferred_prompt:
                return out, True, {"prompt": m.deferred_prompt, "deferred": True}
            return out, True, {"prompt": m.prompt_id, "window_s": m.cfg.rating.prompt_window_s}

        return run

    @staticmethod
    def _cmd_sign_in(staff_no: str | None) -> CommandRun:
        def run(m: PadMachine, t: float) -> tuple[list[Record], bool, Any]:
            assert staff_no is not None
            known = staff_no in m.directory
            if not known:
                log.warning("pad: %s signed in by command is not in the staff directory", staff_no)
            out = m.sign_in(m.directory.get(staff_no) or Staff(staff=staff_no), t)
            return out, True, {"staff": staff_no, "known": known, "changed": bool(out)}

        return run

    @staticmethod
    def _cmd_sign_out(staff_no: str | None) -> CommandRun:
        def run(m: PadMachine, t: float) -> tuple[list[Record], bool, Any]:
            on_duty = m.staff.staff if m.staff else None
            if staff_no is not None and on_duty is not None and staff_no != on_duty:
                return [], False, f"{on_duty} is on duty here, not {staff_no}"
            out = m.sign_out(t)
            return out, True, {"staff": None, "changed": bool(out)}

        return run

    @staticmethod
    def _cmd_pause(name: str) -> CommandRun:
        def run(m: PadMachine, t: float) -> tuple[list[Record], bool, Any]:
            if m.state == PadState.CLOSED:
                return [], False, f"cannot {name}: closed, no clerk is signed in"
            out = m.pause(t) if name == "pause" else m.resume(t)
            return out, True, {"changed": bool(out)}

        return run

    # -- the core thread --------------------------------------------------------------------

    def _tick(self) -> None:
        self._apply(self.machine.tick(self.clock()))

    def _apply(self, records: list[Record]) -> bool:
        """Store `records` in order; False when they (or older ones) wait for the disk."""
        self._unstored.extend(records)
        if len(self._unstored) > MAX_UNSTORED:
            lost = len(self._unstored) - MAX_UNSTORED
            log.error("pad: %d events dropped: the disk has refused writes too long", lost)
            del self._unstored[:lost]
        if self._unstored and (records or time.monotonic() >= self._retry_at):
            while self._unstored:
                rec = self._unstored[0]
                try:
                    ev = self.uplink.record(rec.etype, rec.data, alert_kind=rec.alert_kind)
                except StorageError:
                    # Not durable, so no "thank you": the screen shows the fault instead, and
                    # the events are tried again every RETRY_S.
                    self._retry_at = time.monotonic() + RETRY_S
                    break
                self._unstored.pop(0)
                log.info("pad: %s seq %d stored", rec.etype, ev.seq)
        self._save_state()
        self._render()
        return not self._unstored

    def _render(self, force: bool = False) -> None:
        view = self.machine.view(self.clock())
        if self._unstored:
            view.fault = "storage"
        staff = view.staff
        key = (
            view.state,
            view.prompt,
            view.score,
            view.fault,
            view.notice,
            (staff.staff, staff.name, staff.title, len(staff.photo or "")) if staff else None,
            None if view.seconds_left is None else int(view.seconds_left + 0.999),
        )
        if key == self._last_view_key and not force:
            return
        self._last_view_key = key
        self.last_view = view
        for fn in list(self._listeners):
            try:
                fn(view)
            except Exception:
                log.exception("pad: a view listener failed")

    # -- who is on duty survives a restart ----------------------------------------------------

    def _restore(self) -> None:
        try:
            snap = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.warning(
                "pad: %s unreadable (%s); starting with no clerk signed in", self.state_file, e
            )
            return
        if isinstance(snap, dict):
            self.machine.restore(snap, self.clock())
            self._saved = self.machine.snapshot()
            log.info("pad: restored %s", "paused" if snap.get("paused") else "on duty")

    def _save_state(self) -> None:
        snap = self.machine.snapshot()
        if snap == self._saved:
            return
        tmp = Path(f"{self.state_file}.tmp")
        try:
            tmp.write_text(json.dumps(snap, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.state_file)
            self._saved = snap
        except OSError as e:
            log.warning("pad: cannot save %s: %s", self.state_file, e)
