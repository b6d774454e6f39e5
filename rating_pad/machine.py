"""The rating pad's state machine: pure, clock passed in, shared by the headless and the Kivy pad.

Inputs are method calls (`key`, `prompt`, `staff`, `tick`, ...); each returns the events to
record, in order. The screen renders `view()`; nothing here touches a device or the network.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from terminal.config import DeviceConfig
from terminal.envelope import uuid7

log = logging.getLogger("careterm.pad")


class PadState(enum.StrEnum):
    CLOSED = "closed"      # no clerk at the window (signed out)
    IDLE = "idle"          # clerk shown; waiting for a prompt (prompted) or a press (free)
    PROMPTED = "prompted"  # "请您对我的服务做出评价"
    REASON = "reason"      # a low score: asking why
    THANKS = "thanks"
    PAUSED = "paused"      # "暂停服务"


@dataclass(frozen=True)
class Record:
    """An event the pad must make durable: `etype`, `data` and, for alerts, the kind."""

    etype: str
    data: dict[str, Any]
    alert_kind: str = ""


@dataclass
class Staff:
    staff: str
    name: str = ""
    title: str = ""
    photo: str | None = None
    token: str = ""


@dataclass
class _Pending:
    score: int
    prompt: str | None
    response_ms: int | None
    misuse: bool
    since: float


@dataclass
class PadView:
    state: PadState
    window_id: str
    window_name: str
    staff: Staff | None
    labels: list[str]
    reasons: list[str]
    score: int | None = None
    seconds_left: float | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class PadMachine:
    def __init__(self, cfg: DeviceConfig) -> None:
        self.cfg = cfg
        r = cfg.rating
        self.labels = list(r.labels)
        self.scale = len(self.labels)
        self.reasons = list(r.reasons)
        self.mode = r.mode
        self.key_map = dict(cfg.buttons.keys)
        self.state = PadState.IDLE
        self.staff: Staff | None = None
        self.directory: dict[str, Staff] = {}
        self._prompt_id: str | None = None
        self._prompt_at = 0.0
        self._state_until: float | None = None
        self._last_counted: float | None = None
        self._pending: _Pending | None = None
        self._last_score: int | None = None
        self._before_pause = PadState.IDLE

    # -- inputs ---------------------------------------------------------------------------

    def key(self, name: str, t: float) -> list[Record]:
        """A keypad or touch key, by its name in `[buttons].keys`."""
        what = self.key_map.get(name)
        if what is None:
            log.debug("pad: key %r is not mapped", name)
            return []
        if isinstance(what, int):
            return self.score(what, t)
        return self.action(what, t)

    def score(self, score: int, t: float) -> list[Record]:
        out = self.tick(t)
        if not 1 <= score <= self.scale:
            return out
        if self.state == PadState.REASON:
            return out + self.choose_reason(score - 1, t)
        if self.state in (PadState.PAUSED, PadState.CLOSED):
            log.info("pad: press ignored while %s", self.state.value)
            return out
        if self.mode == "prompted":
            if self.state != PadState.PROMPTED:
                log.info("pad: press ignored (no open prompt)")
                return out
            prompt, response_ms, misuse = (
                self._prompt_id, int(round((t - self._prompt_at) * 1000)), False
            )
            self._prompt_id = None
        else:
            misuse = (self._last_counted is not None
                      and t - self._last_counted < self.cfg.rating.cooldown_s)
            prompt = self._prompt_id if self.state == PadState.PROMPTED else None
            response_ms = int(round((t - self._prompt_at) * 1000)) if prompt else None
            self._prompt_id = None
        self._last_counted = t
        self._last_score = score
        if score <= self.cfg.rating.alert_at_or_below and not misuse:
            self._pending = _Pending(score, prompt, response_ms, misuse, t)
            self._enter(PadState.REASON, t + self.cfg.rating.reason_timeout_s)
            return out
        self._enter(PadState.THANKS, t + self.cfg.rating.thanks_s)
        return out + self._rating(score, None, prompt, misuse, response_ms)

    def choose_reason(self, index: int, t: float) -> list[Record]:
        """The patient picked reason `index` (0-based) on the reason screen."""
        if self.state != PadState.REASON or self._pending is None:
            return []
        if not 0 <= index < len(self.reasons):
            return []
        return self._finish_reason(self.reasons[index], t)

    def prompt(self, t: float, ticket: Any = None) -> list[Record]:
        out = self.tick(t)
        if self.state in (PadState.PAUSED, PadState.CLOSED, PadState.REASON):
            log.info("pad: prompt ignored while %s", self.state.value)
            return out
        self._prompt_id = uuid7()
        self._prompt_at = t
        self._enter(PadState.PROMPTED, t + self.cfg.rating.prompt_window_s)
        return out

    def action(self, what: str, t: float) -> list[Record]:
        if what == "prompt":
            return self.prompt(t)
        if what == "pause":
            if self.state == PadState.PAUSED:
                return self.resume(t)
            return self.pause(t)
        if what == "resume":
            return self.resume(t)
        if what == "sign_out":
            return self.sign_out(t)
        return []

    def pause(self, t: float) -> list[Record]:
        out = self.tick(t)
        if self.state in (PadState.PAUSED, PadState.CLOSED):
            return out
        out += self._flush_pending(t)
        self._enter(PadState.PAUSED, None)
        return out + [self._staff_event("pause")]

    def resume(self, t: float) -> list[Record]:
        out = self.tick(t)
        if self.state != PadState.PAUSED:
            return out
        self._enter(PadState.IDLE, None)
        return out + [self._staff_event("resume")]

    def sign_in(self, staff: Staff, t: float) -> list[Record]:
        out = self.tick(t)
        out += self._flush_pending(t)
        if self.staff is not None and self.staff.staff != staff.staff:
            out.append(self._staff_event("sign_out"))
        self.staff = staff
        self._enter(PadState.IDLE, None)
        return out + [self._staff_event("sign_in")]

    def sign_out(self, t: float) -> list[Record]:
        out = self.tick(t)
        if self.staff is None and self.state == PadState.CLOSED:
            return out
        out += self._flush_pending(t)
        rec = self._staff_event("sign_out")
        self.staff = None
        self._prompt_id = None
        self._enter(PadState.CLOSED, None)
        return out + [rec]

    def staff_card(self, token: str, t: float) -> list[Record]:
        """A staff card on the pad's reader: sign in its owner, or sign out if already on duty."""
        found = next((s for s in self.directory.values() if s.token and s.token == token), None)
        if found is None:
            log.warning("pad: a staff card not in the staff directory was read")
            return []
        if self.staff is not None and self.staff.staff == found.staff:
            return self.sign_out(t)
        return self.sign_in(found, t)

    def set_directory(self, staff: list[Staff]) -> None:
        self.directory = {s.staff: s for s in staff}
        if self.staff is not None and self.staff.staff in self.directory:
            self.staff = self.directory[self.staff.staff]

    def tick(self, t: float) -> list[Record]:
        """Timeouts: prompt window, reason timeout, thank-you screen."""
        if self._state_until is None or t < self._state_until:
            return []
        if self.state == PadState.REASON:
            return self._finish_reason(None, t)
        if self.state in (PadState.PROMPTED, PadState.THANKS):
            self._prompt_id = None
            self._enter(PadState.IDLE, None)
        return []

    # -- view -----------------------------------------------------------------------------

    def view(self, t: float) -> PadView:
        left = None if self._state_until is None else max(0.0, self._state_until - t)
        return PadView(
            state=self.state, window_id=self.cfg.window.id, window_name=self.cfg.window.name,
            staff=self.staff, labels=self.labels, reasons=self.reasons,
            score=self._last_score if self.state in (PadState.THANKS, PadState.REASON) else None,
            seconds_left=left,
        )

    # -- internals ------------------------------------------------------------------------

    def _enter(self, state: PadState, until: float | None) -> None:
        self.state = state
        self._state_until = until

    def _finish_reason(self, reason: str | None, t: float) -> list[Record]:
        p, self._pending = self._pending, None
        if p is None:
            return []
        self._enter(PadState.THANKS, t + self.cfg.rating.thanks_s)
        return self._rating(p.score, reason, p.prompt, p.misuse, p.response_ms)

    def _flush_pending(self, t: float) -> list[Record]:
        if self.state == PadState.REASON:
            return self._finish_reason(None, t)
        return []

    def _rating(self, score: int, reason: str | None, prompt: str | None, misuse: bool,
                response_ms: int | None) -> list[Record]:
        data = {
            "window": self.cfg.window.id,
            "staff": self.staff.staff if self.staff else None,
            "score": score, "scale": self.scale, "label": self.labels[score - 1],
            "reason": reason, "prompt": prompt, "misuse": misuse, "response_ms": response_ms,
        }
        rec = Record("rating", data)
        if score <= self.cfg.rating.alert_at_or_below and not misuse:
            alert = {
                "kind": "dissatisfied", "severity": "warning",
                "message": f"{self.cfg.window.name or self.cfg.window.id}: "
                           f"{self.labels[score - 1]}" + (f" ({reason})" if reason else ""),
                "window": self.cfg.window.id, "staff": data["staff"], "score": score,
                "reason": reason,
            }
            return [rec, Record("alert", alert, "dissatisfied")]
        return [rec]

    def _staff_event(self, action: str) -> Record:
        return Record("staff", {
            "window": self.cfg.window.id, "action": action,
            "staff": self.staff.staff if self.staff else None,
        })
