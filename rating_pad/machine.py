"""The rating pad's state machine: pure, clock passed in, shared by the headless and the Kivy pad.

Inputs are method calls (`key`, `touch`, `prompt`, `sign_in`, `tick`, ...) with the monotonic
time of the input; each returns the events to record, in order. The screen renders `view()`;
nothing here touches a device, a file or the network.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from drivers.repeat import RepeatFilter
from terminal.config import DeviceConfig
from terminal.envelope import alert_data, uuid7

log = logging.getLogger("careterm.pad")

REPEAT_S = 0.1
"""The same key again, with no other key between, within this long of its last press is
auto-repeat (10 Hz or faster) of a held or stuck key, not a new press. The window restarts at
every press seen, so a held key counts once until released. The keypad driver's `debounce_ms`
filter does the same for bounce."""
NOTICE_S = 4.0
"""How long a notice (an unregistered staff card) stays on screen."""
TOUCH_REPEAT_S = 0.3
"""The same rating button touched again this soon is a double tap."""
REASON_GRACE_S = 0.6
"""Just after the reason screen opens, a touch, or the same key as the low score, is a double
press, not a choice: ignored this long. Another key picks its reason at once."""

DEFAULT_LABELS_EN = {
    "不满意": "Dissatisfied",
    "基本满意": "Acceptable",
    "满意": "Satisfied",
    "非常满意": "Very satisfied",
    "很不满意": "Very dissatisfied",
    "一般": "Neutral",
}
DEFAULT_REASONS_EN = {
    "等候时间长": "Long wait",
    "服务态度差": "Unfriendly service",
    "业务不熟练": "Lack of skill",
    "其他": "Other",
}


class PadState(enum.StrEnum):
    CLOSED = "closed"  # no clerk at the window (signed out)
    IDLE = "idle"  # clerk shown; waiting for a prompt (prompted) or a press (free)
    PROMPTED = "prompted"  # "请您对我的服务做出评价"
    REASON = "reason"  # a low score: asking why
    THANKS = "thanks"
    PAUSED = "paused"  # "暂停服务"


@dataclass(frozen=True)
class Record:
    """An event the pad must make durable: `etype`, `data` and, for alerts, the kind."""

    etype: str
    data: dict[str, Any]
    alert_kind: str = ""


@dataclass
class Staff:
    """A clerk from the retained `R/S/staff` directory (the token is a staff card's token)."""

    staff: str
    name: str = ""
    title: str = ""
    photo: str | None = None
    token: str = ""

    def public(self) -> dict[str, Any]:
        """What survives a restart on disk (no card token)."""
        return {"staff": self.staff, "name": self.name, "title": self.title}


@dataclass
class _Pending:
    score: int
    prompt: str | None
    response_ms: int | None
    misuse: bool


@dataclass
class PadView:
    """Everything a screen needs to draw the pad; `fault` is set by the service."""

    state: PadState
    mode: str
    window_id: str
    window_name: str
    staff: Staff | None
    labels: list[str]
    labels_en: list[str]
    reasons: list[str]
    reasons_en: list[str]
    language: str
    score: int | None = None
    seconds_left: float | None = None
    prompt: str | None = None
    fault: str | None = None
    notice: str | None = None
    """A short message over the screen: "unknown_staff_card"."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def buttons(self) -> bool:
        """Whether the rating buttons are live on screen."""
        if self.state == PadState.PROMPTED:
            return True
        return self.mode == "free" and self.state in (PadState.IDLE, PadState.THANKS)


def english(zh: list[str], en: list[str], table: dict[str, str]) -> list[str]:
    if en:
        return list(en)
    return [table.get(s, s) for s in zh]


class PadMachine:
    def __init__(self, cfg: DeviceConfig) -> None:
        self.cfg = cfg
        r = cfg.rating
        self.labels = list(r.labels)
        self.labels_en = english(self.labels, r.labels_en, DEFAULT_LABELS_EN)
        self.scale = len(self.labels)
        self.reasons = list(r.reasons)
        self.reasons_en = english(self.reasons, r.reasons_en, DEFAULT_REASONS_EN)
        self.mode = r.mode
        self.key_map = dict(cfg.buttons.keys)
        self.staff: Staff | None = None
        self.directory: dict[str, Staff] = {}
        self.state = PadState.CLOSED if r.staff_required else PadState.IDLE
        self.prompt_id: str | None = None
        self._prompt_at = 0.0
        self._ticket: Any = None
        self._deferred: tuple[str, Any] | None = None
        self._state_until: float | None = None
        self._entered_at = 0.0
        self._last_counted: float | None = None
        self._pending: _Pending | None = None
        self._last_score: int | None = None
        self._inputs = RepeatFilter(REPEAT_S, per_key=False)
        self._notice: tuple[str, float] | None = None
        self._recent: deque[bool] = deque(maxlen=max(1, r.trend_window))
        self._trend_alerted = False

    # -- keys and touches -----------------------------------------------------------------

    def key(self, name: str, t: float) -> list[Record]:
        """A keypad key, by its name in `[buttons].keys`."""
        what = self.key_map.get(name)
        if what is None:
            log.debug("pad: key %r is not mapped", name)
            return self.tick(t)
        if self._is_repeat(f"key:{name}", t):
            log.info(
                "pad: key %r again within %.2f s: auto-repeat or a stuck key, ignored",
                name,
                REPEAT_S,
            )
            return self.tick(t)
        if isinstance(what, int):
            return self.score(what, t)
        return self.action(what, t)

    def touch(self, score: int, t: float) -> list[Record]:
        """A rating button on the touchscreen; on the reason screen use `choose_reason`."""
        if self._is_repeat(f"touch:{score}", t, TOUCH_REPEAT_S):
            return self.tick(t)
        return self.score(score, t)

    def _is_repeat(self, source: str, t: float, window: float = REPEAT_S) -> bool:
        """Auto-repeat is the same key again and again with nothing between: a press of the
        key that was also the previous input, within `window` of it."""
        return not self._inputs.fresh(source, t, window)

    def score(self, score: int, t: float) -> list[Record]:
        """A score pressed (key or touch). On the reason screen, score N picks reason N."""
        out = self.tick(t)
        if not 1 <= score <= self.scale:
            return out
        if self.state == PadState.REASON:
            if (
                self._pending is not None
                and score == self._pending.score
                and t - self._entered_at < REASON_GRACE_S
            ):
                log.info("pad: the low-score key again at once: a double press, ignored")
                return out
            return out + self._pick_reason(score - 1, t)
        if self.state in (PadState.PAUSED, PadState.CLOSED):
            log.info("pad: press ignored while %s", self.state.value)
            return out
        prompt = self.prompt_id if self.state == PadState.PROMPTED else None
        if self.mode == "prompted":
            if prompt is None:
                log.info("pad: press ignored (no open prompt)")
                return out
            misuse = False
        else:
            misuse = (
                self._last_counted is not None
                and t - self._last_counted < self.cfg.rating.cooldown_s
            )
        response_ms = max(0, int(round((t - self._prompt_at) * 1000))) if prompt else None
        self.prompt_id = None
        self._last_counted = t
        self._last_score = score
        if score <= self.cfg.rating.alert_at_or_below and not misuse:
            self._pending = _Pending(score, prompt, response_ms, misuse)
            self._enter(PadState.REASON, t, t + self.cfg.rating.reason_timeout_s)
            return out
        self._enter(PadState.THANKS, t, t + self.cfg.rating.thanks_s)
        return out + self._rating(score, None, prompt, misuse, response_ms)

    def choose_reason(self, index: int, t: float) -> list[Record]:
        """The patient touched reason `index` (0-based) on the reason screen."""
        out = self.tick(t)
        if self.state == PadState.REASON and t - self._entered_at < REASON_GRACE_S:
            log.info("pad: reason touched too soon after the score (a double tap), ignored")
            return out
        return out + self._pick_reason(index, t)

    def _pick_reason(self, index: int, t: float) -> list[Record]:
        if self.state != PadState.REASON or self._pending is None:
            return []
        if not 0 <= index < len(self.reasons):
            return []
        return self._finish_reason(self.reasons[index], t)

    def action(self, what: str, t: float) -> list[Record]:
        """A keypad action key: "prompt", "pause" (toggles), "resume" or "sign_out"."""
        if what == "prompt":
            return self.prompt(t)
        if what == "pause":
            return self.resume(t) if self.state == PadState.PAUSED else self.pause(t)
        if what == "resume":
            return self.resume(t)
        if what == "sign_out":
            return self.sign_out(t)
        return self.tick(t)

    # -- the queue's prompt ---------------------------------------------------------------

    def can_prompt(self) -> str | None:
        """Why a prompt cannot open now, or None."""
        if self.state == PadState.CLOSED:
            return "closed: no clerk is signed in"
        if self.state == PadState.PAUSED:
            return "paused"
        return None

    def prompt(self, t: float, ticket: Any = None) -> list[Record]:
        """Ask for a rating; while a reason is asked, the prompt opens once it is answered."""
        out = self.tick(t)
        why = self.can_prompt()
        if why:
            log.info("pad: prompt ignored (%s)", why)
            return out
        pid = uuid7()
        if self.state == PadState.REASON:
            self._deferred = (pid, ticket)
            log.info("pad: prompt deferred until the reason is answered")
            return out
        self._open_prompt(pid, ticket, t)
        return out

    def _open_prompt(self, pid: str, ticket: Any, t: float) -> None:
        self.prompt_id = pid
        self._ticket = ticket
        self._prompt_at = t
        self._enter(PadState.PROMPTED, t, t + self.cfg.rating.prompt_window_s)

    @property
    def deferred_prompt(self) -> str | None:
        return self._deferred[0] if self._deferred else None

    # -- staff ----------------------------------------------------------------------------

    def pause(self, t: float) -> list[Record]:
        out = self.tick(t)
        if self.state in (PadState.PAUSED, PadState.CLOSED):
            return out
        out += self._flush_pending(t)
        self._cancel_prompts()
        self._enter(PadState.PAUSED, t, None)
        return out + [self._staff_event("pause")]

    def resume(self, t: float) -> list[Record]:
        out = self.tick(t)
        if self.state != PadState.PAUSED:
            return out
        self._enter(PadState.IDLE, t, None)
        return out + [self._staff_event("resume")]

    def sign_in(self, staff: Staff, t: float) -> list[Record]:
        """Put `staff` on duty (a different clerk on duty is signed out first)."""
        out = self.tick(t)
        if self.staff is not None and self.staff.staff == staff.staff:
            self.staff = staff
            return out
        out += self._flush_pending(t)
        self._cancel_prompts()
        if self.staff is not None:
            out.append(self._staff_event("sign_out"))
        self.staff = staff
        self._recent.clear()  # a new clerk does not inherit the last one's trend
        self._trend_alerted = False
        self._enter(PadState.IDLE, t, None)
        return out + [self._staff_event("sign_in")]

    def sign_out(self, t: float) -> list[Record]:
        out = self.tick(t)
        if self.staff is None:
            return out
        out += self._flush_pending(t)
        self._cancel_prompts()
        rec = self._staff_event("sign_out")
        self.staff = None
        self._enter(PadState.CLOSED, t, None)  # the clerk left: the window is closed
        return out + [rec]

    def staff_card(self, token: str, t: float) -> list[Record]:
        """A staff card on the pad's reader: sign in its owner, or sign out if already on duty."""
        found = self.find_token(token)
        if found is None:
            log.warning("pad: a staff card not in the staff directory was read")
            self._notice = ("unknown_staff_card", t + NOTICE_S)
            return self.tick(t)
        if self.staff is not None and self.staff.staff == found.staff:
            return self.sign_out(t)
        return self.sign_in(found, t)

    def find_token(self, token: str) -> Staff | None:
        if not token:
            return None
        return next((s for s in self.directory.values() if s.token == token), None)

    def set_directory(self, staff: list[Staff]) -> None:
        self.directory = {s.staff: s for s in staff}
        if self.staff is not None and self.staff.staff in self.directory:
            self.staff = self.directory[self.staff.staff]

    # -- time -----------------------------------------------------------------------------

    def tick(self, t: float) -> list[Record]:
        """Timeouts: prompt window, reason timeout, thank-you screen."""
        if self._state_until is None or t < self._state_until:
            return []
        if self.state == PadState.REASON:
            return self._finish_reason(None, t)
        if self.state == PadState.PROMPTED:
            log.info("pad: prompt %s expired without a rating", self.prompt_id)
            self.prompt_id = None
            self._enter(PadState.IDLE, t, None)
        elif self.state == PadState.THANKS:
            if self._deferred is not None:
                pid, ticket = self._deferred
                self._deferred = None
                self._open_prompt(pid, ticket, t)
            else:
                self._enter(PadState.IDLE, t, None)
        return []

    def flush(self, t: float) -> list[Record]:
        """Stopping: a rating still waiting for its reason is recorded now (`reason: null`)."""
        return self._flush_pending(t)

    # -- restart --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Who is on duty and whether the window is paused: kept across restarts."""
        return {
            "staff": self.staff.public() if self.staff else None,
            "paused": self.state == PadState.PAUSED,
            "closed": self.state == PadState.CLOSED,
        }

    def restore(self, snap: dict[str, Any], t: float) -> None:
        who = snap.get("staff")
        if isinstance(who, dict) and isinstance(who.get("staff"), str) and who["staff"]:
            self.staff = self.directory.get(who["staff"]) or Staff(
                staff=who["staff"],
                name=str(who.get("name") or ""),
                title=str(who.get("title") or ""),
            )
        if self.staff is None and snap.get("closed"):
            self._enter(PadState.CLOSED, t, None)
        elif self.staff is not None or not self.cfg.rating.staff_required:
            self._enter(PadState.PAUSED if snap.get("paused") else PadState.IDLE, t, None)

    # -- view -----------------------------------------------------------------------------

    def view(self, t: float) -> PadView:
        left = None if self._state_until is None else max(0.0, self._state_until - t)
        return PadView(
            state=self.state,
            mode=self.mode,
            window_id=self.cfg.window.id,
            window_name=self.cfg.window.name,
            staff=self.staff,
            labels=self.labels,
            labels_en=self.labels_en,
            reasons=self.reasons,
            reasons_en=self.reasons_en,
            language=self.cfg.rating.language,
            score=self._last_score if self.state in (PadState.THANKS, PadState.REASON) else None,
            seconds_left=left,
            prompt=self.prompt_id,
            notice=self._notice[0] if self._notice and t < self._notice[1] else None,
        )

    # -- internals ------------------------------------------------------------------------

    def _enter(self, state: PadState, t: float, until: float | None) -> None:
        self.state = state
        self._entered_at = t
        self._state_until = until

    def _cancel_prompts(self) -> None:
        self.prompt_id = None
        self._deferred = None

    def _finish_reason(self, reason: str | None, t: float) -> list[Record]:
        p, self._pending = self._pending, None
        if p is None:
            return []
        self._enter(PadState.THANKS, t, t + self.cfg.rating.thanks_s)
        return self._rating(p.score, reason, p.prompt, p.misuse, p.response_ms)

    def _flush_pending(self, t: float) -> list[Record]:
        if self.state == PadState.REASON:
            return self._finish_reason(None, t)
        return []

    def _rating(
        self,
        score: int,
        reason: str | None,
        prompt: str | None,
        misuse: bool,
        response_ms: int | None,
    ) -> list[Record]:
        data = {
            "window": self.cfg.window.id,
            "staff": self.staff.staff if self.staff else None,
            "score": score,
            "scale": self.scale,
            "label": self.labels[score - 1],
            "reason": reason,
            "prompt": prompt,
            "misuse": misuse,
            "response_ms": response_ms,
        }
        out = [Record("rating", data)]
        low = score <= self.cfg.rating.alert_at_or_below
        if low and not misuse:
            where = self.cfg.window.name or self.cfg.window.id
            text = f"{where}: {self.labels[score - 1]}" + (f" ({reason})" if reason else "")
            alert = alert_data(
                "dissatisfied",
                "warning",
                text,
                window=self.cfg.window.id,
                staff=data["staff"],
                score=score,
                scale=self.scale,
                label=data["label"],
                reason=reason,
                prompt=prompt,
            )
            out.append(Record("alert", alert, "dissatisfied"))
        if not misuse:
            out += self._trend(low)
        return out

    def _trend(self, low: bool) -> list[Record]:
        """HappyOrNot's lesson: one angry patient is an alert, a rising share of them is a
        bigger one. Fires once when the share of low scores in the last `trend_window`
        ratings reaches `trend_share`, and again only after it has fallen below."""
        r = self.cfg.rating
        if r.trend_window <= 0:
            return []
        self._recent.append(low)
        if len(self._recent) < r.trend_window:
            return []
        lows = sum(self._recent)
        share = lows / len(self._recent)
        if share < r.trend_share:
            self._trend_alerted = False
            return []
        if self._trend_alerted:
            return []
        self._trend_alerted = True
        worst = self.labels[r.alert_at_or_below - 1] if r.alert_at_or_below else ""
        where = self.cfg.window.name or self.cfg.window.id
        alert = alert_data(
            "dissatisfied",
            "critical",
            f"{where}: {lows} of the last {len(self._recent)} ratings were {worst} or worse",
            window=self.cfg.window.id,
            staff=self.staff.staff if self.staff else None,
            score=None,
            reason=None,
            trend={"window": len(self._recent), "low": lows, "share": round(share, 3)},
        )
        return [Record("alert", alert, "dissatisfied")]

    def _staff_event(self, action: str) -> Record:
        return Record(
            "staff",
            {
                "window": self.cfg.window.id,
                "action": action,
                "staff": self.staff.staff if self.staff else None,
            },
        )
