"""Runs the pad: one core thread feeds the state machine from keys, cards, commands and the clock,
makes every resulting event durable through the uplink, and tells the screen what to show.

What the machine needs after a restart (clerk, prompts open or waiting, the reason being
asked, `cmd/prompt` replies by cid, today's count) is saved to `<data_dir>/pad_state.json`
after the events are stored and before a command is answered; the outbox is the truth when
the two disagree (a process killed between them). While the disk refuses the file it is kept
in memory and tried again (every `SAVE_RETRY_S`, and at once for a new event or command), and
a command's reply says `stored: false`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from rating_pad.machine import PadMachine, PadState, PadView, Record, Staff
from terminal.config import DeviceConfig
from terminal.core import CoreLoop
from terminal.documents import DocumentStore
from terminal.envelope import alert_data
from terminal.outbox import Outbox, StorageError, StoredEvent
from terminal.payloads import (
    MAX_STAFF_NO,
    PayloadError,
    PromptCommand,
    StaffCommand,
    StaffDirectory,
    parse,
    staff_number,
)

log = logging.getLogger("careterm.pad")

TICK_S = 0.1
RETRY_S = 5.0
"""How often events that could not be stored are tried again."""
LINK_POLL_S = 1.0
"""How often the clerk's status line looks at the link and the outbox."""
SEND_FIRST_S = 0.25
"""How long a new screen waits for the event of the press to be on its way to the broker: on a
Pi the screen's CPU would otherwise come first (bench/pi_budget.py, `pad_ui`)."""
SAVE_RETRY_S = 1.0
"""How often a state file the disk refused is tried again while nothing new happens."""
SAVE_REMIND_S = 60.0
"""How often the log says again that the state file still cannot be saved."""
MAX_UNSTORED = 1000
MAX_PHOTO_CHARS = 2_000_000
STATE_FILE = "pad_state.json"
PAD_COMMANDS = ("prompt", "staff", "pause", "resume")
"""The commands a pad takes besides the link's `ping` and `resend`: a kiosk's `print_test` is
answered "not supported by this device"."""

M = TypeVar("M", bound=BaseModel)
ViewListener = Callable[[PadView], None]
Reply = Callable[[bool, dict[str, Any] | None, str | None], None]
# A command's work on the core thread: (events to record, ok, result or error message).
CommandRun = Callable[[PadMachine, float], tuple[list[Record], bool, Any]]


class UplinkLike(Protocol):
    """What the pad needs of `terminal.uplink.Uplink` (tests pass a bare outbox-backed one)."""

    outbox: Outbox

    def record(self, etype: str, data: dict[str, Any], *, alert_kind: str = "") -> StoredEvent: ...

    def alert(self, kind: str, severity: str, message: str, **details: Any) -> StoredEvent: ...


def write_state_file(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, atomically and synced. A temporary file the disk cut short
    is removed: on a full disk it would hold on to the space."""
    tmp = Path(f"{path}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


_DISK_ERRORS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk full (quota)",
    errno.EROFS: "read-only",
    errno.EIO: "I/O error",
}


def disk_error(e: OSError) -> str:
    """An OSError as a technician reads it: `disk full (...)`, `read-only (...)`, ..."""
    kind = _DISK_ERRORS.get(e.errno or 0)
    return f"{kind} ({e})" if kind else str(e)


def staff_from(doc: StaffDirectory) -> list[Staff]:
    """The clerks of a staff directory that `terminal.payloads.StaffDirectory` validated (in
    `terminal.documents`); an oversized photo is dropped (the screen shows the initial)."""
    out: list[Staff] = []
    for m in doc.root:
        photo = m.photo
        if photo is not None and len(photo) > MAX_PHOTO_CHARS:
            log.warning("staff directory: the photo of %s is over 2 MB; shown without", m.staff)
            photo = None
        out.append(
            Staff(staff=m.staff, name=m.name, title=m.title, photo=photo, token=m.token or "")
        )
    return out


@dataclass
class StoredTruth:
    """What the outbox shows of the last run (the truth when a kill left the state file
    behind): prompts already closed (by a counted rating or a `prompt` event), ratings whose
    reason is stored, ratings that asked a reason and have none ((event id, staff)), and
    counted low scores whose `dissatisfied` alert is missing ((event id, data))."""

    closed_prompts: set[str] = field(default_factory=set)
    reasons_done: set[str] = field(default_factory=set)
    unanswered: list[tuple[str, str | None]] = field(default_factory=list)
    unalerted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    last_staff: tuple[str, dict[str, Any]] | None = None
    """The newest `staff` event (event id, data): who is on duty, paused or closed."""


def as_model(model: type[M], body: dict[str, Any] | BaseModel) -> M:
    """A command body as `model`, whether the link passed JSON or an already parsed model."""
    if isinstance(body, model):
        return body
    if isinstance(body, BaseModel):
        body = body.model_dump(by_alias=True)
    return parse(model, body)


STAFF_ACTIONS = ("sign_in", "sign_out", "pause", "resume")


def on_duty_from(snap: dict[str, Any], last_staff: tuple[str, dict[str, Any]] | None) -> None:
    """Correct `snap` (in place) by the newest stored `staff` event when the state file has not
    seen it (`snap["staff_event"]` names the newest one it has): the process died between
    storing a sign-in, sign-out or pause and saving the state file, and the clerk on duty is
    the one the outbox says, never the one who signed out."""
    if last_staff is None or last_staff[0] == snap.get("staff_event"):
        return
    ev_id, data = last_staff
    action, who = data.get("action"), data.get("staff")
    before = snap.get("staff")
    was = before.get("staff") if isinstance(before, dict) else None
    if action == "sign_out" or not isinstance(who, str) or not who:
        who = None
    now = (who, action == "pause", action == "sign_out")
    if now != (was, bool(snap.get("paused")), bool(snap.get("closed"))):
        log.warning(
            "pad: the state file missed the last %s (event %s) before the stop: %s on duty, "
            "as the outbox says",
            action,
            ev_id,
            who or "nobody",
        )
    if who != was:
        snap["staff"] = None if who is None else {"staff": who}
    snap["paused"], snap["closed"] = now[1], now[2]
    snap["staff_event"] = ev_id


def other_window(snap: dict[str, Any], truth: StoredTruth, window: str) -> bool:
    """Whether what the last run left says another window than `window` (the technician gave
    the pad a new `[window].id`): the saved state's window, or, for a state file written before
    it was saved there, the window of the newest `staff` event. The clerk who was on duty at the
    other window is not on duty at this one."""
    saved = snap.get("window")
    if isinstance(saved, str):
        return saved != window
    if truth.last_staff is not None:
        return truth.last_staff[1].get("window") not in (None, window)
    return False


def scan_outbox(outbox: Outbox, alert_at_or_below: int) -> StoredTruth:
    truth = StoredTruth()
    asked: dict[str, str | None] = {}
    low: dict[str, dict[str, Any]] = {}
    alerted: set[str] = set()
    for ev in outbox.iter_all("all"):
        if ev.type not in ("rating", "reason", "prompt", "alert", "staff"):
            continue
        try:
            data = json.loads(ev.payload)["data"]
        except (ValueError, KeyError, TypeError):
            continue
        if ev.type == "staff":
            if isinstance(data, dict) and data.get("action") in STAFF_ACTIONS:
                truth.last_staff = (ev.id, data)
        elif ev.type == "rating":
            counted = not data.get("misuse")
            if data.get("prompt") and counted:
                truth.closed_prompts.add(data["prompt"])
            if data.get("reason_asked"):
                asked[ev.id] = data.get("staff")
            score = data.get("score")
            if counted and isinstance(score, int) and score <= alert_at_or_below:
                low[ev.id] = data
        elif ev.type == "reason":
            truth.reasons_done.add(data.get("rating"))
        elif ev.type == "alert":
            if data.get("kind") == "dissatisfied" and data.get("rating"):
                alerted.add(data["rating"])
        elif data.get("prompt"):
            truth.closed_prompts.add(data["prompt"])
    truth.unanswered = [(rid, s) for rid, s in asked.items() if rid not in truth.reasons_done]
    truth.unalerted = [(rid, d) for rid, d in low.items() if rid not in alerted]
    return truth


class PadService:
    """Thread-safe inputs (`press`, `touch`, `submit`, ...); the machine runs on one thread."""

    def __init__(
        self,
        cfg: DeviceConfig,
        uplink: UplinkLike,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        link_state: Callable[[], tuple[bool, int]] | None = None,
        write_state: Callable[[Path, bytes], None] = write_state_file,
    ) -> None:
        self.cfg = cfg
        self.uplink = uplink
        self.clock = clock
        self.wall = wall
        self.link_state = link_state
        """`() -> (connected, events waiting)` for the clerk's status line."""
        self.write_state = write_state
        """`(path, data)` writes the state file (a test makes the disk refuse it)."""
        self.machine = PadMachine(cfg)
        self.state_file = cfg.data_dir / STATE_FILE
        self._wall_offset = wall() - clock()
        self.core = CoreLoop("pad-core", tick=self._tick, tick_s=TICK_S)
        self.staff_doc = DocumentStore("staff", cfg.data_dir, alert=uplink.alert)
        self._listeners: list[ViewListener] = []
        self._last_view_key: Any = None
        self._unstored: list[Record] = []
        self._retry_at = 0.0
        self._saved: Any = None
        self._state_saved = True
        """The state file holds the current snapshot."""
        self._unsaved_cids: set[str] = set()
        """`cmd/prompt` cids answered but not saved yet: remembered in memory only."""
        self._save_error: str | None = None
        """Why the state file cannot be saved, while it cannot."""
        self._save_failed_at = 0.0
        self._save_tries = 0
        self._save_retry_at = 0.0
        self._save_remind_at = 0.0
        self._today: tuple[str, int] = (self._date(), 0)
        self._link: tuple[bool, int] = (True, 0)
        self._link_at = 0.0
        self.last_view: PadView | None = None
        self._devices_down: set[str] = set()
        self._staff_event: str | None = None
        """The event id of the newest `staff` event stored (saved with the state)."""

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

    @property
    def today(self) -> int:
        """Counted ratings at this pad since local midnight."""
        date, n = self._today
        return n if date == self._date() else 0

    # -- wiring ---------------------------------------------------------------------------

    def on_view(self, fn: ViewListener) -> None:
        """`fn(view)` on the core thread at every visible change (a UI must hop threads)."""
        self._listeners.append(fn)

    def start(self) -> None:
        """Restore what the last run left (and close what it left open), then run the core.
        Call before the uplink connects, so the outbox still holds what it stored last."""
        self.restore()
        self.core.start()
        self.core.put(lambda: self._render(force=True))

    def restore(self) -> None:
        """The last good staff directory, the saved state and what the outbox shows; records
        what the last run left open (on the calling thread: before `start`)."""
        self._use_staff(self.staff_doc.load() is not None)
        snap: Any = {}
        try:
            snap = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            log.warning(
                "pad: %s unreadable (%s); starting with no clerk signed in", self.state_file, e
            )
        if not isinstance(snap, dict):
            snap = {}
        today = snap.get("today")
        if isinstance(today, dict) and isinstance(today.get("count"), int):
            self._today = (str(today.get("date")), today["count"])
        truth = scan_outbox(self.uplink.outbox, self.cfg.rating.alert_at_or_below)
        if other_window(snap, truth, self.cfg.window.id):
            log.warning(
                "pad: %s is of window %s and this pad is now window %s: starting with no "
                "clerk signed in (what the old window left open is closed)",
                self.state_file,
                snap.get("window") or truth.last_staff and truth.last_staff[1].get("window"),
                self.cfg.window.id,
            )
            snap["staff"], snap["paused"], snap["closed"] = None, False, False
            truth.last_staff = None
        on_duty_from(snap, truth.last_staff)
        mark = snap.get("staff_event")
        self._staff_event = mark if isinstance(mark, str) else None
        records = self.machine.restore(
            snap,
            self.clock(),
            self.wall(),
            closed_prompts=truth.closed_prompts,
            reasons_done=truth.reasons_done,
            unanswered=truth.unanswered,
            unalerted=truth.unalerted,
        )
        if snap:
            log.info("pad: restored (%s)", self.machine.state.value)
        self._apply(records)

    def stop(self) -> None:
        """Record what is pending (a rating waiting for its reason), then stop the core."""

        def last_job() -> None:
            self._apply(self.machine.flush(self.clock()), save_now=True)
            if self._unstored:
                log.error(
                    "pad: stopping with %d events the disk refused; they are lost",
                    len(self._unstored),
                )
            if not self._state_saved:
                log.error(
                    "pad: stopping with %s not saved (%s); a restart forgets what changed "
                    "since it was last saved",
                    self.state_file,
                    self._save_error,
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
        """Retained `R/S/staff` (link thread): validated and kept by `terminal.documents` on
        the core thread. A document that fails never replaces the last good one (in memory or
        on disk) and raises one `document` warning per distinct bad document."""
        self.core.put(lambda: self._use_staff(self.staff_doc.offer(payload, topic).accepted))

    def _use_staff(self, changed: bool) -> None:
        doc = self.staff_doc.current
        if not changed or not isinstance(doc, StaffDirectory):
            return
        staff = staff_from(doc)
        log.info("staff directory: %d clerks", len(staff))
        self.machine.set_directory(staff)
        self._render(force=True)

    # -- commands ---------------------------------------------------------------------------

    def on_command(self, name: str, body: dict[str, Any] | BaseModel, reply: Reply) -> None:
        """MQTT commands (link thread; `body` as JSON or already parsed by the link): checked
        here, run on the core thread, replied after the events they cause are stored. A
        rejected command changes nothing."""
        run: CommandRun
        if name == "prompt":
            try:
                cmd = as_model(PromptCommand, body)
            except PayloadError as e:
                reply(False, None, f"bad prompt command: {e}")
                return
            self.core.put(lambda: self._prompt_command(cmd, reply))
            return
        if name == "staff":
            try:
                scmd = as_model(StaffCommand, body)
            except PayloadError as e:
                reply(False, None, f"bad staff command: {e}")
                return
            staff_no = staff_number(scmd.staff) if scmd.staff is not None else None
            if scmd.staff is not None and staff_no is None:
                reply(
                    False,
                    None,
                    f"staff must be a staff number (1..{MAX_STAFF_NO} printable "
                    'characters), e.g. "E1024"',
                )
                return
            run = (
                self._cmd_sign_in(staff_no)
                if scmd.action == "sign_in"
                else self._cmd_sign_out(staff_no)
            )
        elif name in ("pause", "resume"):
            run = self._cmd_pause(name)
        else:
            reply(
                False,
                None,
                f"unknown command {name!r} (a pad takes {', '.join(PAD_COMMANDS)}, ping, resend)",
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
            if records and not (stored and self._state_saved):
                result["stored"] = False
            reply(True, result, None)
        else:
            reply(False, None, result)

    def _prompt_command(self, cmd: PromptCommand, reply: Reply) -> None:
        """`cmd/prompt`, idempotent by cid: a cid seen before gets its first reply again and
        opens nothing. The cid is saved with the state before the reply, so a redelivery after
        a restart is recognised too. When the disk refuses the state file (or the events),
        the reply says `stored: false` (so does a repeat while the cid is still unsaved): the
        cid is then remembered in memory only until the disk takes it, and a restart in that
        time forgets it."""
        m = self.machine
        first = m.cids.get(cmd.cid)
        if first is not None:
            log.info("pad: prompt cid %s seen before: its first reply again", cmd.cid)
            result = first.get("result")
            if cmd.cid in self._unsaved_cids and isinstance(result, dict):
                result = {**result, "stored": False}
            reply(bool(first.get("ok")), result, first.get("error"))
            return
        now = self.clock()
        self._apply(m.tick(now))
        why = m.can_prompt()
        if why:
            m.remember_cid(cmd.cid, {"ok": False, "error": f"cannot prompt: {why}"})
            self._unsaved_cids.add(cmd.cid)
            self._state_saved = self._save_state(now=True)
            reply(False, None, f"cannot prompt: {why}")
            return
        records = m.prompt(now, cmd.ticket, cmd.cid)
        assert m.asked is not None
        result = {**m.reply_for(m.asked), "state": m.state.value}
        m.remember_cid(cmd.cid, {"ok": True, "result": result})
        self._unsaved_cids.add(cmd.cid)
        stored = self._apply(records, save_now=True)
        if not stored or cmd.cid in self._unsaved_cids:
            result = {**result, "stored": False}
        reply(True, result, None)

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

    def run_pending(self) -> None:
        """Run the queued inputs and the clock on the calling thread, as the core thread would
        (for a test that drives the service step by step without `start`)."""
        self.core.drain()

    def _tick(self) -> None:
        self._apply(self.machine.tick(self.clock()))

    def _apply(self, records: list[Record], *, save_now: bool = False) -> bool:
        """Store `records` in order, save the state, redraw; False when they (or older ones)
        wait for the disk. A state file the disk refused is tried again at once when there are
        records or `save_now` (a command), else every `SAVE_RETRY_S`."""
        self._unstored.extend(records)
        if len(self._unstored) > MAX_UNSTORED:
            lost = len(self._unstored) - MAX_UNSTORED
            log.error("pad: %d events dropped: the disk has refused writes too long", lost)
            del self._unstored[:lost]
        sent_first = 0
        if self._unstored and (records or time.monotonic() >= self._retry_at):
            while self._unstored:
                rec = self._unstored[0]
                try:
                    ev = self.uplink.record(rec.etype, rec.resolve(), alert_kind=rec.alert_kind)
                except StorageError:
                    # Not durable, so no "thank you": the screen shows the fault instead, and
                    # the events are tried again every RETRY_S.
                    self._retry_at = time.monotonic() + RETRY_S
                    break
                rec.event_id = ev.id
                self._unstored.pop(0)
                if rec.etype == "staff":
                    self._staff_event = ev.id
                if rec.etype == "rating" and not rec.data.get("misuse"):
                    self._count_today()
                log.info("pad: %s seq %d stored", rec.etype, ev.seq)
                sent_first = ev.seq
        self._state_saved = self._save_state(now=save_now or bool(records))
        if sent_first and self._listeners:
            self.uplink.wait_handed(sent_first, SEND_FIRST_S)
        self._render()
        return not self._unstored

    def _count_today(self) -> None:
        date = self._date()
        self._today = (date, (self._today[1] if self._today[0] == date else 0) + 1)

    def _date(self) -> str:
        return time.strftime("%Y-%m-%d", time.localtime(self.wall()))

    def _render(self, force: bool = False) -> None:
        view = self.machine.view(self.clock())
        if self._unstored:
            view.fault = "storage"
        view.today = self.today
        if self.link_state is not None:
            if force or time.monotonic() >= self._link_at:
                self._link_at = time.monotonic() + LINK_POLL_S
                try:
                    self._link = self.link_state()
                except Exception:  # the status line must never stop the pad
                    if self._link_at >= 0:
                        log.exception("pad: the link state for the clerk's line failed")
                    self.link_state = None  # shown as unknown (no link part) from now on
            if self.link_state is not None:
                view.link = "online" if self._link[0] else "offline"
                view.waiting = self._link[1]
        staff = view.staff
        key = (
            view.state,
            view.prompt,
            view.score,
            view.fault,
            view.notice,
            view.today,
            view.link,
            view.waiting,
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

    # -- what survives a restart ----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        snap = self.machine.snapshot(self._wall_offset)
        snap["today"] = {"date": self._today[0], "count": self._today[1]}
        snap["staff_event"] = self._staff_event
        snap["window"] = self.cfg.window.id
        return snap

    def _save_state(self, now: bool = False) -> bool:
        """Write the snapshot when it changed, atomically and synced; True when the file holds
        the current snapshot. After the disk refused it, it is tried again every
        `SAVE_RETRY_S` (at once when `now`), always with the newest snapshot, so nothing waits
        in between; the log says so once, then once a `SAVE_REMIND_S`, and once when it works
        again."""
        snap = self.snapshot()
        if snap == self._saved:
            return True
        t = self.clock()
        if self._save_error is not None and not now and t < self._save_retry_at:
            return False
        try:
            self.write_state(self.state_file, json.dumps(snap, ensure_ascii=False).encode())
        except OSError as e:
            self._save_failed(disk_error(e), t)
            return False
        self._saved = snap
        self._unsaved_cids.clear()
        if self._save_error is not None:
            log.warning(
                "pad: %s saved again, after %.0f s and %d tries that failed",
                self.state_file,
                t - self._save_failed_at,
                self._save_tries,
            )
            self._save_error = None
        return True

    def _save_failed(self, why: str, t: float) -> None:
        self._save_retry_at = t + SAVE_RETRY_S
        if self._save_error is None:
            self._save_failed_at, self._save_tries = t, 0
            self._save_remind_at = t + SAVE_REMIND_S
            log.warning(
                "pad: cannot save %s: %s; the pad goes on, what it holds is kept in memory "
                "and saved once the disk takes it (tried every %g s)",
                self.state_file,
                why,
                SAVE_RETRY_S,
            )
        elif t >= self._save_remind_at:
            self._save_remind_at = t + SAVE_REMIND_S
            log.warning(
                "pad: still cannot save %s: %s (for %.0f s, %d tries)",
                self.state_file,
                why,
                t - self._save_failed_at,
                self._save_tries + 1,
            )
        self._save_error = why
        self._save_tries += 1
