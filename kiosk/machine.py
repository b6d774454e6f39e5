"""The kiosk's flows as a pure state machine: no device, file, network or screen in here.

Every input (a card read, a tap or key choice, a retained document, a device state change, the
clock) is a method call that returns the effects the service must carry out, in order: make an
event durable, print, speak, save a file, raise an alert. Results that matter to the flow come
back as inputs (`print_result`, `storage_failed`). The screen renders `view()`.
The clocks are injected: `mono()` for timeouts, `now()` (aware datetime) for the day's roster.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from drivers.base import DeviceState
from drivers.card_reader.base import CardRead
from drivers.printer.document import Document
from kiosk.checkin import Decision, decide, first_allowed
from kiosk.directory import Directory
from kiosk.feedback import CATEGORIES, PHONE, FeedbackForm, mask_phone
from kiosk.i18n import FEEDBACK_TOPICS
from kiosk.roster import Appointment, Roster
from kiosk.survey import Survey, SurveyRun
from kiosk.ticket import (
    Place,
    appointment_qr,
    checkin_ticket,
    feedback_slip,
    slot_text,
    where_text,
)
from kiosk.views import (
    AppointmentsView,
    CheckinView,
    DoneView,
    FeedbackDoneView,
    FeedbackView,
    GuideView,
    HelpView,
    HomeView,
    Item,
    LookupView,
    MaintenanceView,
    NoticeView,
    PinView,
    ProblemView,
    RefusedView,
    Screen,
    SiteTexts,
    SurveyView,
    View,
)
from terminal.config import DeviceConfig
from terminal.privacy import lookup_token

log = logging.getLogger("careterm.kiosk")

COUNTDOWN_S = 10
"""The idle overlay counts down this long before the patient is forgotten."""
DONE_HOME_S = 10
TICKET_ON_SCREEN_HOME_S = 30
"""A ticket shown on screen (printer failed) stays longer: the patient photographs it."""
CARE_TIME_FACTOR = 3
"""Care mode: no time pressure, every timeout this many times longer."""
DONE_GRACE_S = 1.0
"""Home/Back on a result screen this soon after it appeared is the second press of a double
Enter or tap that made it, not a choice: ignored."""
HELP_REPEAT_S = 60.0
"""A second "call staff" within this long raises no second alert."""
PIN_TRIES = 5
PIN_LOCK_S = 60
PHONE_DIGITS = 11
BIRTH_DIGITS = 8
APPOINTMENT_MAX_DIGITS = 20
DATE_IN_ID = re.compile(r"(20[0-9]{2})([01][0-9])([0-3][0-9])")
"""An appointment id that carries a date (A20261123-0042) tells a QR for another day."""


# -- effects ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """Make an event durable (outbox). A failure stops the batch: `storage_failed()`."""

    etype: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Alert:
    """An alert event; a failure to store it is logged, never shown to a patient."""

    kind: str
    severity: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Print:
    """Print a document; the result comes back through `print_result(job, ok, error)`."""

    doc: Document
    job: str  # checkin | slip | test


@dataclass(frozen=True)
class Speak:
    clip: str
    lang: str


@dataclass(frozen=True)
class Save:
    """Write a file in data_dir durably. `must`: a failure stops the batch (`storage_failed`)."""

    name: str
    content: Any
    """A JSON-able object."""
    must: bool = False


@dataclass(frozen=True)
class TestPrinter:
    """Maintenance: print a test ticket and report through `maintenance_message`."""


@dataclass(frozen=True)
class Exit:
    """Maintenance "quit the app"."""


Effect = Record | Alert | Print | Speak | Save | TestPrinter | Exit


# -- the machine --------------------------------------------------------------------------------


@dataclass
class _Patient:
    """Everything about the patient at the kiosk now; `forget()` drops it all."""

    card_kind: str = ""
    token: str = ""
    decisions: list[Decision] = field(default_factory=list)


class KioskMachine:
    def __init__(
        self,
        cfg: DeviceConfig,
        *,
        salt: bytes | None = None,
        mono: Callable[[], float],
        now: Callable[[], datetime],
        checkins: tuple[str, dict[str, str]] = ("", {}),
        feedback_count: tuple[str, int] = ("", 0),
    ) -> None:
        self.cfg = cfg
        k = cfg.kiosk
        self.salt = salt
        self.mono = mono
        self.now = now
        self.site = SiteTexts(
            hospital_name=k.hospital_name,
            hospital_name_en=k.hospital_name_en,
            logo=k.logo,
            help_desk=k.help_desk,
            help_desk_en=k.help_desk_en,
            booking_hint=k.booking_hint,
            booking_hint_en=k.booking_hint_en,
            feedback_reply_days=k.feedback_reply_days,
            location=k.location,
        )
        self.lookups = tuple(m for m in k.lookup if m != "phone_birth" or salt is not None)
        self.lang = k.language
        self.care = False
        self.screen = Screen.HOME
        self.data: Any = HomeView()
        self.patient = _Patient()
        self.roster: Roster | None = None
        self.loading = False
        """The documents on disk are not read yet (start-up): no roster is not a problem yet."""
        self.rosters_aside: tuple[Roster, ...] = ()
        """Valid rosters for other dates (SPEC 9.4): never used for check-in."""
        self.directory = Directory()
        self.survey: Survey | None = None
        self._survey_run: SurveyRun | None = None
        self.checked_day, self.checked = checkins[0], dict(checkins[1])
        self.fb_day, self.fb_count = feedback_count
        self.printer = DeviceState.UNKNOWN
        self.printer_detail = ""
        self.printer_silent = False
        """The printer can answer DLE EOT but never does: its state cannot be known."""
        self.printer_near_end = False
        self.reader = DeviceState.UNKNOWN
        self.printer_enabled = True
        self.network_up = True
        self._faulted: set[str] = set()
        self._content = 0
        self._entered = mono()
        self._last_input = mono()
        self._auto_home_at: float | None = None
        self._help_at: float | None = None
        self._before_help: tuple[Screen, Any, float | None] | None = None
        """The screen "call staff" covered, its data and the seconds it had left: Back on the
        help screen returns to it (a ticket shown on screen, a half-typed number)."""
        self._pin_fails = 0
        self._pin_locked_until = 0.0
        self._reader_test = False
        self._view_cache: tuple[int, View] | None = None

    # -- view ----------------------------------------------------------------------------------

    def status(self) -> tuple[str, ...]:
        out = []
        if self.printer_enabled and self.printer in (DeviceState.ERROR, DeviceState.ABSENT):
            out.append("status_printer")
        elif self.printer_enabled and self.printer_silent:
            out.append("status_printer_unknown")
        if self.reader in (DeviceState.ERROR, DeviceState.ABSENT):
            out.append("status_reader")
        if not self.network_up:
            out.append("status_network")
        if self.today_roster() is None and not self.loading:
            out.append("status_roster")
        return tuple(out)

    def view(self) -> View:
        t = self.mono()
        back_in = countdown = None
        if self._auto_home_at is not None:
            back_in = max(0, int(self._auto_home_at - t + 0.999))
        elif self._idle_applies():
            left = self.idle_timeout() - (t - self._last_input)
            if left <= 0:
                countdown = max(0, int(COUNTDOWN_S * self._factor() + left + 0.999))
        return View(
            screen=self.screen,
            lang=self.lang,
            data=self.data,
            care=self.care,
            status=self.status(),
            countdown=countdown,
            back_in=back_in,
            content=self._content,
            site=self.site,
        )

    def _factor(self) -> int:
        return CARE_TIME_FACTOR if self.care else 1

    def idle_timeout(self) -> float:
        return self.cfg.kiosk.idle_timeout_s * self._factor()

    def _show(self, screen: Screen, data: Any, home_after: float | None = None) -> None:
        if screen != Screen.HELP:
            self._before_help = None
        self.screen = screen
        self.data = data
        self._content += 1
        self._entered = self.mono()
        self._auto_home_at = self._entered + home_after * self._factor() if home_after else None

    def _rerender(self) -> None:
        self._content += 1

    def _touch(self) -> None:
        self._last_input = self.mono()

    def _speak(self, clip: str) -> list[Effect]:
        return [Speak(clip, self.lang)] if self.cfg.kiosk.voice else []

    # -- the clock -----------------------------------------------------------------------------

    def tick(self) -> list[Effect]:
        """Called a few times a second: auto-home after a result, the idle reset."""
        t = self.mono()
        if self._auto_home_at is not None:
            if t >= self._auto_home_at:
                log.info("result screen timed out: home, patient forgotten")
                return self._reset()
            return []
        if not self._idle_applies():
            return []
        v = self.view()
        if v.countdown == 0:
            log.info("idle for %ss: home, patient forgotten", self.idle_timeout())
            return self._reset()
        return []

    def _idle_applies(self) -> bool:
        """Home with the kiosk's own settings has nothing to forget; any other screen, or home
        with a patient's language or care mode, does."""
        return self.screen != Screen.HOME or self.care or self.lang != self.cfg.kiosk.language

    def _reset(self) -> list[Effect]:
        """The patient has left: forget them, back to the kiosk's language, care mode off."""
        self.lang = self.cfg.kiosk.language
        self.care = False
        self._reader_test = False
        self._forget()
        self._show(Screen.HOME, HomeView())
        return []

    def _forget(self) -> None:
        self.patient = _Patient()
        self._survey_run = None
        self._touch()

    def activity(self) -> list[Effect]:
        """A touch or key anywhere: the patient is still there (dismisses the countdown)."""
        self._touch()
        return []

    # -- navigation ----------------------------------------------------------------------------

    def go(self, where: str) -> list[Effect]:
        """home | checkin | lookup | guide | feedback | survey | pin."""
        self._touch()
        if where == "home":
            if self._in_grace():
                log.info("home ignored: a second press right after the result screen appeared")
                return []
            self._forget()
            self._show(Screen.HOME, HomeView())
            return self._speak("home") if self.care else []
        if where == "checkin":
            self._show(Screen.CHECKIN, self._checkin_view())
            if not self._reader_ok():
                return self._speak("reader_fault")
            return self._speak("checkin")
        if where == "lookup":
            return self._lookup_start()
        if where == "guide":
            self._show(Screen.GUIDE, GuideView(self.directory))
            return []
        if where == "feedback":
            self._show(Screen.FEEDBACK, FeedbackView(self.directory))
            return []
        if where == "survey":
            if self.survey is None:
                self._show(Screen.NOTICE, NoticeView("sv_title", "sv_none"), DONE_HOME_S)
                return []
            self._survey_run = SurveyRun(self.survey)
            self._show_question()
            return []
        if where == "pin":
            self._show(Screen.PIN, PinView(disabled=not self.cfg.kiosk.maintenance_pin_sha256))
            return []
        log.warning("unknown screen %r", where)
        return []

    def _in_grace(self) -> bool:
        return (
            self.screen in (Screen.DONE, Screen.FEEDBACK_DONE, Screen.NOTICE, Screen.HELP)
            and self.mono() - self._entered < DONE_GRACE_S
        )

    def back(self) -> list[Effect]:
        """Escape / the Back button: one step back; home keeps the language and care mode."""
        self._touch()
        s, d = self.screen, self.data
        if s == Screen.HELP and self._before_help is not None:
            screen, data, left = self._before_help
            self._show(screen, data, None if left is None else max(left, DONE_HOME_S))
            return []
        if s == Screen.SURVEY and self._survey_run is not None and self._survey_run.back():
            self._show_question()
            return []
        if s == Screen.REFUSED and self.patient.decisions:
            self._show_appointments()
            return []
        if s == Screen.GUIDE and d.dept:
            self._show(Screen.GUIDE, replace(d, dept=""))
            return []
        if s == Screen.FEEDBACK and d.step != "category":
            prev = {"department": "category", "topics": "department", "phone": "topics"}
            self._show(Screen.FEEDBACK, replace(d, step=prev[d.step], error=""))
            return []
        if s == Screen.LOOKUP and d.method and len(self.lookups) > 1:
            self._show(Screen.LOOKUP, LookupView(methods=self.lookups))
            return []
        if s == Screen.LOOKUP or (s == Screen.PROBLEM and d.lookup):
            self._show(Screen.CHECKIN, self._checkin_view())
            return []
        return self.go("home")

    def set_language(self, lang: str) -> list[Effect]:
        if lang not in ("zh", "en") or lang == self.lang:
            return []
        self._touch()
        self.lang = lang
        if self.screen == Screen.GUIDE:
            # letters differ between pinyin and English initials: a stale filter lists nothing
            self.data = replace(self.data, letter="")
        self._rerender()
        return []

    def set_care(self, on: bool | None = None) -> list[Effect]:
        """The care-mode switch (None toggles); on until the patient leaves."""
        self._touch()
        on = (not self.care) if on is None else on
        if on == self.care:
            return []
        self.care = on
        if self._auto_home_at is not None:
            left = self._auto_home_at - self.mono()
            self._auto_home_at = self.mono() + left * (CARE_TIME_FACTOR if on else 1)
        self._rerender()
        return self._speak("care_on") if on else []

    def help(self) -> list[Effect]:
        """ "Call staff": a `help` warning with the kiosk's location; the patient is told."""
        self._touch()
        t = self.mono()
        repeated = self._help_at is not None and t - self._help_at < HELP_REPEAT_S
        out: list[Effect] = []
        if not repeated:
            self._help_at = t
            where = self.site.location or self.cfg.device.id
            out.append(
                Alert(
                    "help",
                    "warning",
                    f"a patient asks for help at {where}",
                    {"location": self.site.location, "screen": str(self.screen)},
                )
            )
        if self.screen != Screen.HELP:
            left = None
            if self._auto_home_at is not None:
                left = (self._auto_home_at - t) / self._factor()
            self._before_help = (self.screen, self.data, left)
        self._show(Screen.HELP, HelpView(self.site.location, repeated), DONE_HOME_S * 3)
        return out + self._speak("help")

    # -- card reads ----------------------------------------------------------------------------

    def today_roster(self) -> Roster | None:
        """The roster for today, or None (the one aside for today is handed over at midnight)."""
        r = self.roster
        return r if r is not None and r.is_for(self.now().date()) else None

    def _reader_ok(self) -> bool:
        return self.reader not in (DeviceState.ERROR, DeviceState.ABSENT)

    def _checkin_view(self) -> CheckinView:
        return CheckinView(self._reader_ok(), self.lookups)

    def card(self, read: CardRead) -> list[Effect]:
        """A card or QR read, on any screen: feedback at once (list or what went wrong)."""
        self._touch()
        if self.screen == Screen.MAINTENANCE:
            self._reader_test = False
            self._show(Screen.MAINTENANCE, MaintenanceView(message=_read_json(read)))
            return []
        if read.kind == "staff_card" and not read.problem:
            self._forget()
            return self.go("pin")
        # Any read starts a new patient's check-in and drops what the previous one was doing.
        self._forget()
        if read.elderly and not self.care:
            self.care = True
        if read.problem:
            return self._problem(read.problem)
        if not read.valid:
            return self._problem("expired")
        roster = self.today_roster()
        if roster is None:
            # a QR for another day says so even before today's roster has come
            if (
                read.kind == "appointment_qr"
                and self._qr_problem(read.appointment or "") == "qr_other_day"
            ):
                return self._problem("qr_other_day")
            return self._problem("no_roster")
        if read.kind == "appointment_qr":
            appt = roster.get(read.appointment or "")
            if appt is None:
                return self._problem(self._qr_problem(read.appointment or ""))
            if self._checked_in_today(appt.id):
                self.patient = _Patient(read.kind, "", self._decide([appt]))
                return self._problem("qr_used", appt)
            appts = [appt]
        else:
            appts = roster.for_token(read.token or "")
        if not appts:
            return self._problem("no_appointment")
        self.patient = _Patient(read.kind, read.token or "", self._decide(appts))
        self._show_appointments()
        return self._speak("list")

    def _qr_problem(self, appointment: str) -> str:
        if any(r.get(appointment) is not None for r in self.rosters_aside):
            return "qr_other_day"
        m = DATE_IN_ID.search(appointment)
        if m:
            try:
                if date(int(m[1]), int(m[2]), int(m[3])) != self.now().date():
                    return "qr_other_day"
            except ValueError:
                pass
        return "no_appointment"

    def failed(self) -> list[Effect]:
        """A patient's input could not be handled: the patient is forgotten and told to go to
        the help desk (spoken with the clip of "cannot check in here now": the same words)."""
        self._forget()
        self._show(Screen.PROBLEM, ProblemView("fault"))
        return self._speak("problem_no_roster")

    def _problem(self, problem: str, appt: Appointment | None = None) -> list[Effect]:
        self._show(
            Screen.PROBLEM,
            ProblemView(
                problem,
                queue_no=appt.queue_no if appt else "",
                appointment=appt.id if appt else "",
                lookup=self.lookups if problem not in ("qr_used", "no_roster") else (),
            ),
        )
        return self._speak(f"problem_{problem}")

    def _decide(self, appts: list[Appointment]) -> list[Decision]:
        k = self.cfg.kiosk
        now = self.now()
        return [
            decide(a, now, k.checkin_early_min, k.checkin_late_min, self._checked_in_today(a.id))
            for a in appts
        ]

    def _checked_in_today(self, appointment_id: str) -> bool:
        return (
            self.checked_day == self.now().date().isoformat()
            and appointment_id.upper() in self.checked
        )

    def _show_appointments(self) -> None:
        items = []
        for d in self.patient.decisions:
            a = d.appointment
            dept = self.directory.department(a.department_id)
            state = ("reprint" if d.repeat else "checkin") if d.allowed else (d.refusal or "")
            items.append(
                Item(
                    id=a.id,
                    queue_no=a.queue_no,
                    department=a.department,
                    department_en=dept.name_en if dept else "",
                    doctor=a.doctor,
                    room=a.room,
                    where=where_text(self._place(a.department_id).floor, a.room),
                    time=slot_text(a),
                    state=state,
                    hhmm=d.come_back_hhmm,
                )
            )
        name = self.patient.decisions[0].appointment.name if self.patient.decisions else ""
        self._show(
            Screen.APPOINTMENTS,
            AppointmentsView(name, tuple(items), first_allowed(self.patient.decisions)),
        )

    # -- manual lookup -------------------------------------------------------------------------

    def _lookup_start(self) -> list[Effect]:
        if not self.lookups:
            return []
        method = self.lookups[0] if len(self.lookups) == 1 else ""
        self._show(Screen.LOOKUP, self._lookup_view(method))
        return self._speak("lookup")

    def _lookup_view(self, method: str) -> LookupView:
        first = {"appointment": "number", "phone_birth": "phone"}.get(method, "")
        return LookupView(method=method, field=first, methods=self.lookups)

    def lookup_method(self, method: str) -> list[Effect]:
        self._touch()
        if self.screen != Screen.LOOKUP or method not in self.lookups:
            return []
        self._show(Screen.LOOKUP, self._lookup_view(method))
        return []

    def lookup_field(self, which: str) -> list[Effect]:
        """Move to the phone or the birth date field (phone_birth)."""
        self._touch()
        d = self.data
        if (
            self.screen == Screen.LOOKUP
            and d.method == "phone_birth"
            and which in ("phone", "birth")
        ):
            self.data = replace(d, field=which, error="")
            self._rerender()
        return []

    def lookup_key(self, key: str) -> list[Effect]:
        """A keypad key on the lookup screen: a digit, "delete" or "ok"."""
        self._touch()
        d = self.data
        if self.screen != Screen.LOOKUP or not d.field:
            return []
        limit = {"number": APPOINTMENT_MAX_DIGITS, "phone": PHONE_DIGITS, "birth": BIRTH_DIGITS}
        value = getattr(d, d.field)
        if key == "delete":
            self.data = replace(d, **{d.field: value[:-1]}, error="")
        elif len(key) == 1 and key.isdigit():
            if len(value) < limit[d.field]:
                value += key
            self.data = replace(d, **{d.field: value}, error="")
            if d.field == "phone" and len(value) == PHONE_DIGITS and not d.birth:
                self.data = replace(self.data, field="birth")
        elif key == "ok":
            return self._lookup_submit()
        self._rerender()
        return []

    def _lookup_submit(self) -> list[Effect]:
        d: LookupView = self.data
        if d.method == "phone_birth":
            if not PHONE.fullmatch(d.phone):
                return self._lookup_error("lk_phone_bad", "phone")
            if d.field == "phone" and not d.birth:
                self.data = replace(d, field="birth", error="")
                self._rerender()
                return []
            if not _valid_birth(d.birth):
                return self._lookup_error("lk_birth_bad", "birth")
            return self._lookup_find("phone_birth", d.phone + d.birth)
        if len(d.number) < 4:
            return self._lookup_error("lk_number_bad", "number")
        return self._lookup_find("appointment", d.number)

    def _lookup_error(self, key: str, where: str) -> list[Effect]:
        self.data = replace(self.data, error=key, field=where)
        self._rerender()
        return self._speak("lookup_bad")

    def _lookup_find(self, kind: str, value: str) -> list[Effect]:
        roster = self.today_roster()
        if roster is None:
            return self._problem("no_roster")
        appts: list[Appointment] = []
        token = ""
        if self.salt is not None:
            token = lookup_token(self.salt, kind, value)
            appts = roster.for_token(token)
        if not appts and kind == "appointment":
            a = roster.by_digits(value)
            appts = [a] if a is not None else []
        if not appts:
            self._show(
                Screen.PROBLEM,
                ProblemView("not_found", lookup=self.lookups),
            )
            return self._speak("problem_not_found")
        self.patient = _Patient(kind, token, self._decide(appts))
        self._show_appointments()
        return self._speak("list")

    # -- check-in ------------------------------------------------------------------------------

    def choose(self, appointment_id: str) -> list[Effect]:
        self._touch()
        if self.screen == Screen.PROBLEM and self.data.problem == "qr_used":
            if appointment_id != self.data.appointment:
                return []
        elif self.screen != Screen.APPOINTMENTS:
            # a second Enter or tap queued behind a check-in must not check in twice
            log.info("choose %s ignored on screen %s", appointment_id, self.screen)
            return []
        d = next((x for x in self.patient.decisions if x.appointment.id == appointment_id), None)
        if d is None:
            log.warning("choose: %s is not among this patient's appointments", appointment_id)
            return []
        if not d.allowed:
            self._show(
                Screen.REFUSED,
                RefusedView(d.refusal or "", d.come_back_hhmm, slot_text(d.appointment)),
            )
            return self._speak(f"refused_{d.refusal}")
        return self._check_in(d)

    def _place(self, department_id: str) -> Place:
        dept = self.directory.department(department_id)
        if dept is None:
            return Place()
        return Place(dept.floor, dept.location, dept.name_en)

    def _expected_ticket(self) -> str:
        """The ticket outcome expected before printing: none | failed | printed."""
        if not self.printer_enabled or self.printer == DeviceState.DISABLED:
            return "none"
        if self.printer in (DeviceState.ERROR, DeviceState.ABSENT):
            return "failed"
        return "printed"

    def _check_in(self, d: Decision) -> list[Effect]:
        a = d.appointment
        expected = self._expected_ticket()
        data = {
            "appointment": a.id,
            "department_id": a.department_id,
            "queue_no": a.queue_no,
            "card_kind": self.patient.card_kind or "appointment_qr",
            # null, never "", when neither the read nor the roster has one (CheckinData.token)
            "token": self.patient.token or a.token or None,
            "timing": d.timing,
            "ticket": expected,
            "repeat": d.repeat,
        }
        # SPEC 4.1: durable before the ticket prints or the patient is told anything.
        out: list[Effect] = [Record("checkin", data)]
        place = self._place(a.department_id)
        if expected == "printed":
            doc = checkin_ticket(
                a,
                place,
                self.lang,
                self.cfg.device.id,
                self.now(),
                d.repeat,
                hospital=self._hospital_name(),
                columns=self.cfg.printer.columns,
                encoding=self.cfg.printer.encoding,
            )
            out.append(Print(doc, "checkin"))
        if not d.repeat:
            today = self.now().date().isoformat()
            if self.checked_day != today:
                self.checked_day, self.checked = today, {}
            self.checked[a.id.upper()] = a.queue_no
            out.append(Save("checkins.json", {"date": today, "ids": dict(self.checked)}))
        dept = self.directory.department(a.department_id)
        self._show(
            Screen.DONE,
            DoneView(
                queue_no=a.queue_no,
                department=a.department,
                department_en=dept.name_en if dept else "",
                doctor=a.doctor,
                time=slot_text(a),
                where=where_text(place.floor, a.room) or a.department,
                location=place.location,
                ticket=expected,
                qr=appointment_qr(a.id),
                appointment=a.id,
                repeat=d.repeat,
            ),
            TICKET_ON_SCREEN_HOME_S if expected == "failed" else DONE_HOME_S,
        )
        return out + self._speak("done" if expected != "failed" else "done_no_ticket")

    def _hospital_name(self) -> str:
        if self.lang == "en":
            return self.site.hospital_name_en or self.site.hospital_name
        return self.site.hospital_name

    def print_result(self, job: str, ok: bool, error: str | None = None) -> list[Effect]:
        """What the printer did with a `Print` effect."""
        if job == "checkin" and self.screen == Screen.DONE and not ok:
            d: DoneView = self.data
            self.data = replace(d, ticket="failed")
            self._rerender()
            self._auto_home_at = self.mono() + TICKET_ON_SCREEN_HOME_S * self._factor()
            # The event already says "printed" (it had to be durable first): this alert
            # carries the correction for the site.
            return [
                Alert(
                    "printer",
                    "warning",
                    f"ticket for {d.appointment} failed to print: {error}; shown on screen",
                    {"appointment": d.appointment, "ticket": "failed"},
                ),
                *self._speak("done_no_ticket"),
            ]
        if job == "slip" and self.screen == Screen.FEEDBACK_DONE and not ok:
            self.data = replace(self.data, printed=False)
            self._rerender()
            self._auto_home_at = self.mono() + TICKET_ON_SCREEN_HOME_S * self._factor()
        return []

    def storage_failed(self) -> list[Effect]:
        """The outbox or a must-save file refused (disk full or failing): nothing was promised."""
        self._show(Screen.NOTICE, NoticeView("failed_title", "failed_text"), DONE_HOME_S)
        return self._speak("failed")

    # -- guide ---------------------------------------------------------------------------------

    def guide(self, letter: str | None = None, dept: str | None = None) -> list[Effect]:
        """Filter by first letter ("" = all) or open a department ("" closes it)."""
        self._touch()
        if self.screen != Screen.GUIDE:
            return []
        d: GuideView = self.data
        if letter is not None:
            d = replace(d, letter=letter.upper(), dept="")
        if dept is not None:
            d = replace(d, dept=dept if not dept or self.directory.department(dept) else "")
        self._show(Screen.GUIDE, d)
        return []

    # -- feedback ------------------------------------------------------------------------------

    def feedback(self, action: str, value: str | None = None) -> list[Effect]:
        """category <c> | department <id or None> | topic <zh> | next | digit <d> | delete |
        submit."""
        self._touch()
        if self.screen != Screen.FEEDBACK:
            return []  # a double tap on "submit" sends one feedback
        d: FeedbackView = self.data
        if action == "category" and value in CATEGORIES:
            d = replace(d, category=value, step="department", topics=(), error="")
        elif action == "department":
            d = replace(d, department_id=value or None, step="topics", error="")
        elif action == "topic" and value:
            names = [zh for zh, _ in FEEDBACK_TOPICS.get(d.category, [])]
            if value in names:
                t = tuple(x for x in d.topics if x != value)
                d = replace(d, topics=t if value in d.topics else (*d.topics, value), error="")
        elif action == "next":
            d = replace(d, step="phone", error="")
        elif action == "digit" and value and value.isdigit() and len(d.phone) < PHONE_DIGITS:
            d = replace(d, phone=d.phone + value, error="")
        elif action == "delete":
            d = replace(d, phone=d.phone[:-1], error="")
        elif action == "submit":
            return self._feedback_submit(d)
        self.data = d
        self._rerender()
        return []

    def _feedback_submit(self, d: FeedbackView) -> list[Effect]:
        form = FeedbackForm(d.category, d.department_id, list(d.topics), d.phone)
        problem = form.problem()
        if not problem and not (d.topics or d.department_id or d.phone):
            problem = "fb_empty"  # nothing to act on: no number, no promise
        if problem:
            self.data = replace(d, error=problem)
            self._rerender()
            return []
        today = self.now().date()
        key = today.strftime("%Y%m%d")
        n = (self.fb_count if self.fb_day == key else 0) + 1
        self.fb_day, self.fb_count = key, n
        tracking = f"F-{key}-{self.cfg.device.id}-{n:04d}"
        out: list[Effect] = [
            # the number is on disk before it is shown: a restart never hands it out again
            Save("feedback_counter.json", {"date": key, "n": n}, must=True),
            Record("feedback", form.event_data(tracking)),
        ]
        printing = self._expected_ticket() == "printed"
        if printing:
            dept = self.directory.department(d.department_id or "")
            out.append(
                Print(
                    feedback_slip(
                        tracking,
                        d.category,
                        dept.display(self.lang) if dept else "",
                        list(d.topics),
                        bool(d.phone),
                        self.lang,
                        self.now(),
                        hospital=self._hospital_name(),
                        reply_days=self.site.feedback_reply_days,
                        help_desk=self._help_desk(),
                        columns=self.cfg.printer.columns,
                        encoding=self.cfg.printer.encoding,
                    ),
                    "slip",
                )
            )
        self._show(
            Screen.FEEDBACK_DONE,
            FeedbackDoneView(tracking, printing, mask_phone(d.phone) if d.phone else ""),
            DONE_HOME_S if printing else TICKET_ON_SCREEN_HOME_S,
        )
        return out

    def _help_desk(self) -> str:
        if self.lang == "en":
            return self.site.help_desk_en or ""
        return self.site.help_desk

    # -- survey --------------------------------------------------------------------------------

    def _show_question(self) -> None:
        run = self._survey_run
        if run is None:
            return
        q = run.question
        self._show(
            Screen.SURVEY,
            SurveyView(
                q.id,
                q.text,
                q.text_en,
                q.labels,
                q.labels_en,
                run.index + 1,
                len(run.survey.questions),
                run.answers.get(q.id),
            ),
        )

    def survey_answer(self, score: int | None, qid: str | None = None) -> list[Effect]:
        """Answer (None: skip) question `qid` (default: the current one); an answer meant for a
        question already passed (a double tap) is ignored."""
        self._touch()
        run = self._survey_run
        if run is None or self.screen != Screen.SURVEY or run.finished:
            return []
        if qid is not None and run.question.id != qid:
            return []
        if score is not None and not 1 <= score <= run.question.scale:
            return []
        run.answer(score)
        if not run.finished:
            self._show_question()
            return []
        self._survey_run = None
        self._show(Screen.NOTICE, NoticeView("sv_done_title"), DONE_HOME_S // 2)
        return [Record("survey", run.event_data())] if run.answers else []

    # -- retained documents and devices --------------------------------------------------------

    def set_rosters(self, today: Roster | None, aside: tuple[Roster, ...] = ()) -> None:
        """The rosters terminal.documents keeps (validated; another date's aside, promoted on
        its day): today's is used for check-in, those aside only to tell a QR for another day."""
        self.roster, self.rosters_aside = today, aside
        if today is not None:
            log.info("roster of %s (%s): %d appointments", today.date, today.source, len(today))

    def set_directory(self, directory: Directory) -> None:
        self.directory = directory

    def set_survey(self, survey: Survey | None) -> None:
        self.survey = survey

    def device_state(self, name: str, state: DeviceState, detail: str = "") -> list[Effect]:
        """A printer or card reader state change (`silent`: a printer that can report its
        status but never answers)."""
        out: list[Effect] = []
        if name == "printer":
            self.printer, self.printer_detail = state, detail
        else:
            self.reader = state
        if state in (DeviceState.ERROR, DeviceState.ABSENT):
            self._faulted.add(name)
            out.append(
                Alert(
                    name,
                    "critical" if name == "printer" else "warning",
                    f"{name.replace('_', ' ')} {state.value}: {detail or 'no detail'}",
                    {"state": state.value, "detail": detail},
                )
            )
        elif state == DeviceState.OK and name in self._faulted:
            # only a recovery is news; a device coming up at start-up is not
            self._faulted.discard(name)
            out.append(Alert(name, "info", f"{name.replace('_', ' ')} ok again", {"state": "ok"}))
        if name == "card_reader" and self.screen == Screen.CHECKIN:
            self.data = self._checkin_view()
            self._rerender()
        return out

    def printer_status(self, near_end: bool | None, silent: bool = False) -> list[Effect]:
        """DLE EOT news: paper near end, or a printer that never answers (warnings, once)."""
        out: list[Effect] = []
        if near_end and not self.printer_near_end:
            out.append(
                Alert(
                    "printer",
                    "warning",
                    "paper near end: load a new roll soon",
                    {"state": "paper_near_end"},
                )
            )
        self.printer_near_end = bool(near_end)
        if silent and not self.printer_silent:
            out.append(
                Alert(
                    "printer",
                    "warning",
                    "printer does not answer status requests (DLE EOT): paper and cover "
                    "cannot be watched; check the cable and the printer's power",
                    {"state": "no_status"},
                )
            )
        self.printer_silent = silent
        return out

    # -- maintenance ---------------------------------------------------------------------------

    def enter_pin(self, pin: str) -> list[Effect]:
        self._touch()
        t = self.mono()
        want = self.cfg.kiosk.maintenance_pin_sha256
        if not want:
            self._show(Screen.PIN, PinView(disabled=True))
            return []
        if t < self._pin_locked_until:
            self._show(Screen.PIN, PinView(error="pin_bad", locked=True))
            return []
        got = hashlib.sha256(pin.encode()).hexdigest()
        if hmac.compare_digest(got, want):
            self._pin_fails = 0
            log.info("maintenance opened")
            self._show(Screen.MAINTENANCE, MaintenanceView())
            return []
        self._pin_fails += 1
        log.warning("maintenance: wrong PIN (%d)", self._pin_fails)
        if self._pin_fails >= PIN_TRIES:
            self._pin_fails = 0
            self._pin_locked_until = t + PIN_LOCK_S
        self._show(Screen.PIN, PinView(error="pin_bad"))
        return []

    def maintenance(self, action: str) -> list[Effect]:
        """test_printer | test_reader | exit | close."""
        self._touch()
        if self.screen != Screen.MAINTENANCE:
            return []
        if action == "test_printer":
            return [TestPrinter()]
        if action == "test_reader":
            self._reader_test = True
            self._show(Screen.MAINTENANCE, MaintenanceView(message="mt_reader_wait"))
            return []
        if action == "exit":
            log.info("maintenance: exit requested")
            return [Exit()]
        return self._reset()

    def maintenance_message(self, message: str) -> list[Effect]:
        if self.screen == Screen.MAINTENANCE:
            self._show(Screen.MAINTENANCE, MaintenanceView(message=message))
        return []


def _valid_birth(s: str) -> bool:
    if len(s) != BIRTH_DIGITS:
        return False
    try:
        born = date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def _read_json(read: CardRead) -> str:
    return json.dumps(read.to_json(), ensure_ascii=False)
