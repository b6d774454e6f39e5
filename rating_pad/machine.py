"""The rating pad's state machine: pure, clock passed in, shared by the headless and the Kivy pad.

Inputs are method calls (`key`, `touch`, `prompt`, `sign_in`, `tick`, ...) with the monotonic
time of the input; each returns the events to record, in order. The screen renders `view()`;
nothing here touches a device, a file or the network.

Every prompt the pad opens is closed exactly once: by the counted rating that carries its id,
or by a `prompt` event (`expired` or `superseded`). A rating is recorded at the press, before
any reason question; the answer follows as a `reason` event naming the rating's event id.
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict, deque
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
"""How long a notice (an unregistered staff card, a press without a prompt) stays on screen."""
TOUCH_REPEAT_S = 0.3
"""The same rating button touched again this soon is a double tap."""
REASON_GRACE_S = 0.6
"""Just after the reason screen opens, a touch, or the same key as the low score, is a double
press, not a choice: ignored this long. Another key picks its reason at once."""
MAX_CIDS = 500
"""`cmd/prompt` replies remembered by `cid` (a repeated cid gets the first reply again)."""

DEFAULT_LABELS_EN = {
    "非常不满意": "Very dissatisfied",
    "很不满意": "Very dissatisfied",
    "不满意": "Dissatisfied",
    "不太满意": "Not quite satisfied",
    "较差": "Poor",
    "差": "Poor",
    "一般": "Neutral",
    "基本满意": "Fairly satisfied",
    "比较满意": "Fairly satisfied",
    "较满意": "Fairly satisfied",
    "满意": "Satisfied",
    "很满意": "Very satisfied",
    "非常满意": "Very satisfied",
}
DEFAULT_REASONS_EN = {
    "等候时间长": "Long wait",
    "服务态度差": "Unfriendly service",
    "态度不好": "Unfriendly service",
    "业务不熟练": "Lack of skill",
    "办事效率低": "Slow service",
    "收费有误": "Billing error",
    "解释不清": "Unclear explanation",
    "环境嘈杂": "Noisy",
    "指引不清": "Unclear directions",
    "其他": "Other",
}
LABEL_MOODS = {
    "非常不满意": -1.0,
    "很不满意": -1.0,
    "不满意": -0.7,
    "较差": -0.7,
    "差": -1.0,
    "不太满意": -0.4,
    "一般": 0.0,
    "基本满意": 0.0,
    "比较满意": 0.4,
    "较满意": 0.4,
    "满意": 0.6,
    "很满意": 1.0,
    "非常满意": 1.0,
}
"""Face of a known label, -1 (frown) .. 1 (smile): 基本满意 ("basically satisfied") is neutral."""


def moods(labels: list[str]) -> list[float]:
    """One face per label: known labels by meaning; otherwise the worst key frowns, the best
    smiles and the middle of the scale is neutral (on the common four-key scale, the second
    key, as 基本满意 there)."""
    n = len(labels)
    by_place = {
        3: [-1.0, 0.0, 1.0],
        4: [-1.0, 0.0, 0.5, 1.0],
        5: [-1.0, -0.5, 0.0, 0.5, 1.0],
    }.get(n) or [-1 + 2 * i / max(1, n - 1) for i in range(n)]
    return [LABEL_MOODS.get(label, by_place[i]) for i, label in enumerate(labels)]


class PadState(enum.StrEnum):
    CLOSED = "closed"  # no clerk at the window (signed out)
    IDLE = "idle"  # clerk shown; waiting for a prompt (prompted) or a press (free)
    PROMPTED = "prompted"  # "请对我的服务进行评价"
    REASON = "reason"  # a low score: asking why (the rating is already stored)
    THANKS = "thanks"
    PAUSED = "paused"  # "暂停服务"


@dataclass(eq=False)
class Record:
    """An event the pad must make durable: `etype`, `data` and, for alerts, the kind.

    `ref` names the rating record a `reason` event or alert belongs to: its `data["rating"]`
    is filled with that rating's event id (`event_id`, set by whoever stores it) at storing."""

    etype: str
    data: dict[str, Any]
    alert_kind: str = ""
    ref: Record | None = None
    event_id: str | None = None

    def resolve(self) -> dict[str, Any]:
        """`data`, with the referenced rating's event id in place."""
        if self.ref is not None:
            if self.ref.event_id is None:
                raise RuntimeError(f"{self.etype} stored before the rating it belongs to")
            self.data["rating"] = self.ref.event_id
        return self.data


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
class Prompt:
    """A request to rate: from `cmd/prompt` (with its cid and ticket) or the clerk's key."""

    id: str
    ticket: str | None = None
    cid: str | None = None
    opened: float | None = None
    """Monotonic time the patient was first asked; None while deferred."""
    until: float | None = None
    asked: float | None = None
    """Monotonic time the prompt came (a deferred one waits from here)."""


@dataclass
class _Pending:
    """A low score stored at the press whose reason is being asked."""

    rating: Record
    staff: str | None


@dataclass
class PadView:
    """Everything a screen needs to draw the pad; `fault`, `today`, `link` are the service's."""

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
    moods: list[float] = field(default_factory=list)
    score: int | None = None
    seconds_left: float | None = None
    prompt: str | None = None
    fault: str | None = None
    notice: str | None = None
    """A short message over the screen: "unknown_staff_card", "not_prompted"."""
    today: int | None = None
    """Counted ratings at this pad today (for the clerk's status line)."""
    link: str | None = None
    """"online", or "offline" with events waiting (for the clerk's status line)."""
    waiting: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def buttons(self) -> bool:
        """Whether the rating buttons are live on screen."""
        if self.state == PadState.PROMPTED:
            return True
        return self.mode == "free" and self.state in (PadState.IDLE, PadState.THANKS)


def next_patient(before: PadView, now: PadView) -> bool:
    """Whether `now` is a screen for another patient than `before` (the language button's
    choice then goes back to the default): the pad went back to idle, closed or paused, or a
    new prompt opened over the last patient's screens (a prompt during the thank-you screen,
    one deferred behind a reason, one superseding another). A prompt opening over the idle
    screen is for the patient already at the window, who may have chosen a language there."""
    if now.state != before.state and now.state in (PadState.IDLE, PadState.CLOSED, PadState.PAUSED):
        return True
    return now.prompt is not None and now.prompt != before.prompt and before.state != PadState.IDLE


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
        self.moods = moods(self.labels)
        self.scale = len(self.labels)
        self.reasons = list(r.reasons)
        self.reasons_en = english(self.reasons, r.reasons_en, DEFAULT_REASONS_EN)
        self.mode = r.mode
        self.key_map = dict(cfg.buttons.keys)
        self.staff: Staff | None = None
        self.directory: dict[str, Staff] = {}
        self.state = PadState.CLOSED if r.staff_required else PadState.IDLE
        self.open: Prompt | None = None
        """The prompt on screen (state PROMPTED)."""
        self.deferred: Prompt | None = None
        """A prompt that came while the previous patient was still answering; it opens when
        the thank-you screen ends."""
        self.answered: Prompt | None = None
        """The prompt the last counted rating answered (a second press for it is misuse)."""
        self.asked: Prompt | None = None
        """The prompt the last successful `prompt()` call made."""
        self.cids: OrderedDict[str, dict[str, Any]] = OrderedDict()
        """`cmd/prompt` cid -> its reply, so a repeated cid gets the first reply again."""
        self._state_until: float | None = None
        self._entered_at = 0.0
        self._last_counted: float | None = None
        self._last_stray: float | None = None
        self._pending: _Pending | None = None
        self._last_score: int | None = None
        self._inputs = RepeatFilter(REPEAT_S, per_key=False)
        self._notice: tuple[str, float] | None = None
        self._recent: deque[bool] = deque(maxlen=max(1, r.trend_window))
        self._trend_alerted = False

    @property
    def prompt_id(self) -> str | None:
        """The id of the prompt on screen, if any."""
        return self.open.id if self.open else None

    @property
    def pending_rating(self) -> Record | None:
        """The stored low score whose reason is being asked."""
        return self._pending.rating if self._pending else None

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
        out = self.tick(t)
        if self.state == PadState.REASON:
            # The reason screen has no rating buttons: this touch was made on the rating
            # screen (two fingers, a palm, a second tap before the screen changed). It never
            # picks a reason the patient has not seen.
            log.info("pad: a rating button touched after the score: not a reason, ignored")
            return out
        return out + self.score(score, t)

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
            pending = self._pending
            if (
                pending is not None
                and score == pending.rating.data["score"]
                and t - self._entered_at < REASON_GRACE_S
            ):
                log.info("pad: the low-score key again at once: a double press, ignored")
                return out
            return out + self._pick_reason(score - 1, t)
        if self.state in (PadState.PAUSED, PadState.CLOSED):
            log.info("pad: press ignored while %s", self.state.value)
            return out
        r = self.cfg.rating
        if self.open is not None:
            prompt = self.open
            response_ms = self._response_ms(prompt, t)
            if response_ms < r.min_response_ms:
                # Too fast for a patient who read the screen (the clerk's P-then-4): kept,
                # flagged, and the prompt stays open for the patient.
                log.warning("pad: a press %d ms after its prompt: kept as misuse", response_ms)
                return out + self._rating(score, prompt, True, response_ms)
            return out + self._counted(score, prompt, response_ms, t)
        if self.mode == "free":
            misuse = self._last_counted is not None and t - self._last_counted < r.cooldown_s
            if misuse:
                return out + self._rating(score, None, True, None)
            return out + self._counted(score, None, None, t)
        # prompted mode, no prompt open: a press for a prompt already answered, or for none.
        second = self.answered if self.state == PadState.THANKS else None
        if self._last_stray is not None and t - self._last_stray < r.cooldown_s:
            log.info("pad: another press without an open prompt within cooldown_s: dropped")
            return out
        self._last_stray = t
        if second is not None:
            log.info("pad: a second press for prompt %s: kept as misuse", second.id)
            return out + self._rating(score, second, True, self._response_ms(second, t))
        log.info("pad: a press with no open prompt: kept as misuse")
        self._notice = ("not_prompted", t + NOTICE_S)
        return out + self._rating(score, None, True, None)

    def _counted(
        self, score: int, prompt: Prompt | None, response_ms: int | None, t: float
    ) -> list[Record]:
        """A rating that counts: closes its prompt; a low score asks the reason afterwards."""
        r = self.cfg.rating
        self.open = None
        self.answered = prompt
        self._last_counted = t
        self._last_score = score
        low = score <= r.alert_at_or_below
        ask = low and bool(self.reasons)
        rec = self._rating(score, prompt, False, response_ms, reason_asked=ask)
        if ask:
            self._pending = _Pending(rec[0], rec[0].data["staff"])
            self._enter(PadState.REASON, t, t + r.reason_timeout_s)
        else:
            self._enter(PadState.THANKS, t, t + r.thanks_s)
        return rec

    @staticmethod
    def _response_ms(prompt: Prompt, t: float) -> int:
        opened = t if prompt.opened is None else prompt.opened
        return max(0, int(round((t - opened) * 1000)))

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

    def prompt(self, t: float, ticket: str | None = None, cid: str | None = None) -> list[Record]:
        """Ask for a rating. A prompt on screen, or one still waiting, is superseded; while a
        reason is asked the new prompt waits (deferred) until the thank-you screen ends."""
        out = self.tick(t)
        why = self.can_prompt()
        if why:
            log.info("pad: prompt ignored (%s)", why)
            return out
        p = Prompt(id=uuid7(), ticket=ticket, cid=cid, asked=t)
        self.asked = p
        if self.open is not None:
            out.append(self._closed(self.open, "superseded"))
            self.open = None
        if self.deferred is not None:
            out.append(self._closed(self.deferred, "superseded"))
            self.deferred = None
        if self.state == PadState.REASON:
            self.deferred = p
            log.info("pad: prompt %s deferred until the reason is answered", p.id)
            return out
        self._open_prompt(p, t)
        return out

    def _open_prompt(self, p: Prompt, t: float, until: float | None = None) -> None:
        p.opened = t if p.opened is None else p.opened
        p.until = t + self.cfg.rating.prompt_window_s if until is None else until
        self.open = p
        self.answered = None
        self._enter(PadState.PROMPTED, t, p.until)

    def reply_for(self, p: Prompt) -> dict[str, Any]:
        """The `cmd/prompt` result for prompt `p` just after it was asked."""
        if self.deferred is p:
            return {"prompt": p.id, "ticket": p.ticket, "deferred": True}
        return {"prompt": p.id, "ticket": p.ticket, "window_s": self.cfg.rating.prompt_window_s}

    def remember_cid(self, cid: str, reply: dict[str, Any]) -> None:
        self.cids[cid] = reply
        while len(self.cids) > MAX_CIDS:
            self.cids.popitem(last=False)

    # -- staff ----------------------------------------------------------------------------

    def pause(self, t: float) -> list[Record]:
        out = self.tick(t)
        if self.state in (PadState.PAUSED, PadState.CLOSED):
            return out
        out += self._flush_pending(t)
        out += self._cancel_prompts()
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
        out += self._cancel_prompts()
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
        out += self._cancel_prompts()
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
            out = []
            if self.open is not None:
                log.info("pad: prompt %s expired without a rating", self.open.id)
                out.append(self._closed(self.open, "expired"))
                self.open = None
            self._enter(PadState.IDLE, t, None)
            return out
        if self.state == PadState.THANKS:
            self.answered = None
            if self.deferred is not None:
                p, self.deferred = self.deferred, None
                self._open_prompt(p, t)
            else:
                self._enter(PadState.IDLE, t, None)
        return []

    def flush(self, t: float) -> list[Record]:
        """Stopping: a reason still being asked is recorded now as not answered (`null`).
        Prompts stay open: they survive the restart in the snapshot."""
        return self._flush_pending(t)

    # -- restart --------------------------------------------------------------------------

    def snapshot(self, wall_offset: float = 0.0) -> dict[str, Any]:
        """What survives a restart: who is on duty, paused or closed, the prompts open or
        waiting (times as wall-clock times: monotonic + `wall_offset`), the reason being
        asked, the prompt replies by cid."""

        def prompt(p: Prompt | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {
                "id": p.id,
                "ticket": p.ticket,
                "cid": p.cid,
                "opened": None if p.opened is None else round(p.opened + wall_offset, 3),
                "until": None if p.until is None else round(p.until + wall_offset, 3),
                "asked": None if p.asked is None else round(p.asked + wall_offset, 3),
            }

        pending = self._pending
        return {
            "staff": self.staff.public() if self.staff else None,
            "paused": self.state == PadState.PAUSED,
            "closed": self.state == PadState.CLOSED,
            "open": prompt(self.open),
            "deferred": prompt(self.deferred),
            "reason_for": (
                {"rating": pending.rating.event_id, "staff": pending.staff}
                if pending is not None and pending.rating.event_id
                else None
            ),
            "cids": dict(self.cids),
        }

    def restore(
        self,
        snap: dict[str, Any],
        t: float,
        wall: float,
        *,
        closed_prompts: set[str] = frozenset(),  # type: ignore[assignment]
        reasons_done: set[str] = frozenset(),  # type: ignore[assignment]
        unanswered: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
        unalerted: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    ) -> list[Record]:
        """Back from a restart (clean or not). Returns the events that close what the stop
        left open: the reason of a stored low score (`null`: never answered) and prompts whose
        window has passed (`expired`). A prompt still within its window opens again.

        `closed_prompts` (prompts the outbox shows closed), `reasons_done` (ratings whose
        reason is stored) and `unanswered` (stored ratings that asked a reason and have none:
        (event id, staff)) come from the outbox, which is ahead of the snapshot when the
        process died between storing an event and saving the snapshot; `unalerted` are stored
        counted low scores (event id, data) whose `dissatisfied` alert was never stored."""
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
        cids = snap.get("cids")
        if isinstance(cids, dict):
            for cid, reply in cids.items():
                if isinstance(cid, str) and isinstance(reply, dict):
                    self.remember_cid(cid, reply)
        out: list[Record] = []
        for rid, data in unalerted:
            log.warning("pad: the alert of rating %s was not stored before the stop: now", rid)
            out.append(self._dissatisfied(Record("rating", data, event_id=rid)))
        todo = list(unanswered)
        rf = snap.get("reason_for")
        if (
            isinstance(rf, dict)
            and isinstance(rf.get("rating"), str)
            and all(rid != rf["rating"] for rid, _ in todo)
        ):
            todo.append((rf["rating"], rf.get("staff")))
        for rid, who_rated in todo:
            if rid in reasons_done:
                continue
            stub = Record("rating", {}, event_id=rid)
            out.append(self._reason_event(stub, who_rated, None))
            log.info("pad: rating %s was waiting for its reason at the stop: reason null", rid)
        for key in ("open", "deferred"):
            p = _prompt_from(snap.get(key))
            if p is None or p.id in closed_prompts:
                continue
            age = None if p.asked is None else wall - p.asked  # the snapshot's are wall times
            p.asked = None if age is None else t - age
            if self.state not in (PadState.IDLE, PadState.PROMPTED):
                out.append(self._closed(p, "expired"))
                continue
            if key == "deferred" and self.open is None:
                r = self.cfg.rating
                # Waiting, it would have opened within reason_timeout_s + thanks_s of being
                # asked: after a longer stop (a power cut) its patient has long gone.
                latest = r.reason_timeout_s + r.thanks_s + r.prompt_window_s
                if age is not None and not 0 <= age <= latest:
                    out.append(self._closed(p, "expired"))
                    continue
                p.opened = p.until = None
                self._open_prompt(p, t)  # its window never started: a full one now
                continue
            left = None if p.until is None else p.until - wall
            window = self.cfg.rating.prompt_window_s
            if self.open is None and left is not None and 0 < left <= window:
                asked_at = wall if p.opened is None else p.opened
                p.opened = t - max(0.0, min(window, wall - asked_at))
                self._open_prompt(p, t, t + left)
            else:
                out.append(self._closed(p, "expired"))
        return out

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
            moods=self.moods,
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

    def _cancel_prompts(self) -> list[Record]:
        """The window stops serving (pause, sign-out, another clerk): open and waiting prompts
        close without a rating."""
        out = [self._closed(p, "expired") for p in (self.open, self.deferred) if p is not None]
        self.open = self.deferred = self.answered = None
        return out

    def _closed(self, p: Prompt, outcome: str) -> Record:
        who = self.staff.staff if self.staff else None
        return Record(
            "prompt",
            {
                "prompt": p.id,
                "ticket": p.ticket,
                "window": self.cfg.window.id,
                "staff": who,
                "outcome": outcome,
            },
        )

    def _finish_reason(self, reason: str | None, t: float) -> list[Record]:
        p, self._pending = self._pending, None
        if p is None:
            return []
        self._enter(PadState.THANKS, t, t + self.cfg.rating.thanks_s)
        return [self._reason_event(p.rating, p.staff, reason)]

    def _reason_event(self, rating: Record, staff: str | None, reason: str | None) -> Record:
        data = {"rating": rating.event_id, "window": self.cfg.window.id, "staff": staff}
        data["reason"] = reason
        return Record("reason", data, ref=rating)

    def _flush_pending(self, t: float) -> list[Record]:
        if self.state == PadState.REASON:
            return self._finish_reason(None, t)
        return []

    def _rating(
        self,
        score: int,
        prompt: Prompt | None,
        misuse: bool,
        response_ms: int | None,
        *,
        reason_asked: bool = False,
    ) -> list[Record]:
        data = {
            "window": self.cfg.window.id,
            "staff": self.staff.staff if self.staff else None,
            "score": score,
            "scale": self.scale,
            "label": self.labels[score - 1],
            "reason": None,
            "reason_asked": reason_asked,
            "prompt": prompt.id if prompt else None,
            "ticket": prompt.ticket if prompt else None,
            "misuse": misuse,
            "response_ms": response_ms,
        }
        rating = Record("rating", data)
        out = [rating]
        if misuse:
            return out
        low = score <= self.cfg.rating.alert_at_or_below
        if low:
            out.append(self._dissatisfied(rating))
        return out + self._trend(low)

    def _dissatisfied(self, rating: Record) -> Record:
        """The supervisors' alert for a counted low score, sent with the rating (its id is
        filled in when the rating is stored)."""
        data = rating.data
        where = self.cfg.window.name or self.cfg.window.id
        alert = alert_data(
            "dissatisfied",
            "warning",
            f"{where}: {data['label']}",
            window=data["window"],
            staff=data["staff"],
            score=data["score"],
            scale=data["scale"],
            label=data["label"],
            reason=None,
            reason_asked=data["reason_asked"],
            prompt=data["prompt"],
            ticket=data.get("ticket"),
            rating=rating.event_id,
        )
        return Record("alert", alert, "dissatisfied", ref=rating)

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


def _prompt_from(raw: Any) -> Prompt | None:
    """A prompt from a snapshot, or None when it is missing or damaged."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return None

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    ticket = raw.get("ticket")
    cid = raw.get("cid")
    return Prompt(
        id=raw["id"],
        ticket=ticket if isinstance(ticket, str) else None,
        cid=cid if isinstance(cid, str) else None,
        opened=num(raw.get("opened")),
        until=num(raw.get("until")),
        asked=num(raw.get("asked")),
    )
