"""The kiosk's flows on their own thread: card reads, check-in, printing, feedback, survey, idle
and maintenance. Drivers and the uplink are only touched here, never on the UI thread; the UI
renders the `View` this service publishes and sends the patient's choices back."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from drivers.base import DeviceState
from drivers.card_reader.base import CardRead, CardReader
from drivers.printer.base import TicketPrinter
from drivers.printer.document import Document, Feed, Rule, Text
from kiosk.checkin import CheckinLog, Decision, decide_all, first_allowed
from kiosk.directory import Directory, DirectoryError
from kiosk.feedback import FeedbackForm, mask_phone
from kiosk.files import read_json, write_bytes_durably
from kiosk.i18n import tr
from kiosk.roster import RosterError, RosterStore
from kiosk.session import Session
from kiosk.survey import Survey, SurveyError, SurveyRun
from kiosk.ticket import (
    Place,
    TrackingCounter,
    appointment_qr,
    checkin_ticket,
    feedback_slip,
    slot_text,
)
from terminal.config import DeviceConfig
from terminal.documents import DocumentStore
from terminal.outbox import StorageError

log = logging.getLogger("careterm.kiosk")

TICK_S = 0.25
DONE_HOME_S = 10
TICKET_ON_SCREEN_HOME_S = 30
"""A ticket shown on screen (printer failed) stays longer: the patient photographs it."""
PIN_TRIES = 5
PIN_LOCK_S = 60

ViewListener = Callable[["View"], None]


@dataclass(frozen=True)
class View:
    """What the screen shows. `content` changes when the screen must be rebuilt; `countdown`
    (idle overlay) and `back_in` (seconds to auto-home) change every second without a rebuild."""

    screen: str
    lang: str
    data: dict[str, Any] = field(default_factory=dict)
    status: tuple[str, ...] = ()
    countdown: int | None = None
    back_in: int | None = None
    content: int = 0


class KioskService:
    """Thread-safe inputs; everything runs on one `kiosk-core` thread in arrival order."""

    def __init__(
        self,
        cfg: DeviceConfig,
        uplink: Any,
        printer: TicketPrinter | None = None,
        card_reader: CardReader | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.uplink = uplink
        self.printer = printer
        self.card_reader = card_reader
        self.now = now or (lambda: datetime.now().astimezone())
        self.on_exit = on_exit
        data_dir = cfg.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.rosters = RosterStore(data_dir, cfg.kiosk.roster_file)
        self.checkins = CheckinLog(data_dir)
        self.tracking = TrackingCounter(data_dir, cfg.device.id)
        self._dir_path = data_dir / "directory.json"
        self._survey_path = data_dir / "survey.json"
        self.directory = Directory()
        self.survey: Survey | None = None
        # SPEC 9.4: every retained document is validated by terminal.documents first; a bad
        # one keeps the last good one and raises a `document` alert.
        self.documents = {
            name: DocumentStore(
                name, data_dir, alert=getattr(uplink, "alert", None), today=self._today
            )
            for name in ("roster", "directory", "survey")
        }
        self.session = Session(cfg.kiosk.idle_timeout_s)
        self.lang = cfg.kiosk.language
        self._survey_run: SurveyRun | None = None
        self._view = View("home", self.lang)
        self._content = 0
        self._auto_home_at: float | None = None
        self._pin_fails = 0
        self._pin_locked_until = 0.0
        self._faulted: set[str] = set()
        self._inbox: queue.Queue[Callable[[], None]] = queue.Queue()
        self._listeners: list[ViewListener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.heartbeat = time.monotonic()
        self._load_state()

    # -- wiring ---------------------------------------------------------------------------

    def on_view(self, fn: ViewListener) -> None:
        self._listeners.append(fn)
        fn(self._view)

    @property
    def view(self) -> View:
        return self._view

    def start(self) -> None:
        if self.printer is not None:
            self.printer.on_state(
                lambda s, d: self._put(lambda: self._device_state("printer", s, d))
            )
        if self.card_reader is not None:
            self.card_reader.on_state(
                lambda s, d: self._put(lambda: self._device_state("card_reader", s, d))
            )
        self._thread = threading.Thread(target=self._run, name="kiosk-core", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._put(lambda: None)
        if self._thread is not None:
            self._thread.join(5.0)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run `fn` on the core thread and return its result (tests, benchmarks, maintenance)."""
        done = threading.Event()
        box: list[Any] = []

        def job() -> None:
            try:
                box.append(fn())
            finally:
                done.set()

        self._put(job)
        if not done.wait(timeout):
            raise TimeoutError("kiosk core thread did not answer")
        return box[0] if box else None

    def _put(self, job: Callable[[], None]) -> None:
        self._inbox.put(job)

    # -- inputs (any thread) ---------------------------------------------------------------

    def card_read(self, read: CardRead) -> None:
        self._put(lambda: self._card(read))

    def activity(self) -> None:
        """A touch or key anywhere: the patient is still there."""
        self._put(self._activity)

    def go(self, screen: str) -> None:
        """home | checkin | guide | feedback | survey | pin."""
        self._put(lambda: self._go(screen))

    def back(self) -> None:
        self._put(self._back)

    def choose(self, appointment_id: str) -> None:
        self._put(lambda: self._choose(appointment_id))

    def set_language(self, lang: str) -> None:
        self._put(lambda: self._set_lang(lang))

    def submit_feedback(self, form: FeedbackForm) -> None:
        self._put(lambda: self._feedback(form))

    def survey_answer(self, score: int | None, qid: str | None = None) -> None:
        """Answer (None: skip) the question `qid` (default: the current one); an answer meant
        for a question already passed (a double tap) is ignored."""
        self._put(lambda: self._survey_answer(score, qid))

    def enter_pin(self, pin: str) -> None:
        self._put(lambda: self._pin(pin))

    def maintenance(self, action: str) -> None:
        """test_printer | test_reader | exit | close."""
        self._put(lambda: self._maintenance(action))

    # retained messages (link thread: hand over, never parse there)

    def on_roster(self, topic: str, payload: bytes) -> None:
        self._put(lambda: self._roster(payload))

    def on_directory(self, topic: str, payload: bytes) -> None:
        self._put(lambda: self._directory(payload, save=True))

    def on_survey(self, topic: str, payload: bytes) -> None:
        self._put(lambda: self._survey(payload, save=True))

    def on_command(self, name: str, body: dict[str, Any], reply: Callable[..., None]) -> None:
        if name == "print_test":

            def run() -> None:
                ok, err = self._print_test()
                reply(ok, {"printer": self._printer_state()} if ok else None, err)

            self._put(run)
        else:
            reply(False, None, f"unknown command {name!r}")

    def telemetry(self) -> dict[str, Any]:
        return {
            "printer": self._printer_state(),
            "card_reader": self.card_reader.state.value if self.card_reader else "disabled",
            "buttons": None,
            "screen": self._view.screen,
        }

    # -- the core thread -------------------------------------------------------------------

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
                self._tick()
            except Exception:
                # A bug in one flow must not take the kiosk down: log it, go home.
                log.exception("kiosk flow failed; back to the home screen")
                self._home()

    def _load_state(self) -> None:
        self.rosters.load(self.now().date())
        # A site without publishing keeps directory.json / survey.json beside its roster_file.
        beside = Path(self.cfg.kiosk.roster_file).parent if self.cfg.kiosk.roster_file else None
        for path, load in ((self._dir_path, self._directory), (self._survey_path, self._survey)):
            raw = read_json(path)
            if raw is None and beside is not None:
                raw = read_json(beside / path.name)
            if raw is not None:
                load(raw, save=False)
        self._view = self._make("home", {})

    def _today(self) -> date:
        return self.now().date()

    def _status(self) -> tuple[str, ...]:
        out = []
        if self.printer is not None and self.printer.state in (
            DeviceState.ERROR,
            DeviceState.ABSENT,
        ):
            out.append("status_printer")
        if self.card_reader is not None and self.card_reader.state in (
            DeviceState.ERROR,
            DeviceState.ABSENT,
        ):
            out.append("status_reader")
        link = getattr(self.uplink, "link", None)
        if link is not None and not link.connected.is_set():
            out.append("status_network")
        if self.rosters.today(self._today()) is None:
            out.append("status_roster")
        return tuple(out)

    def _make(self, screen: str, data: dict[str, Any]) -> View:
        self._content += 1
        return View(screen, self.lang, data, self._status(), None, None, self._content)

    def _show(
        self, screen: str, data: dict[str, Any] | None = None, home_after: float | None = None
    ) -> None:
        self._auto_home_at = time.monotonic() + home_after if home_after else None
        self._emit(self._make(screen, data or {}))

    def _emit(self, view: View) -> None:
        self._view = view
        for fn in list(self._listeners):
            try:
                fn(view)
            except Exception:
                log.exception("view listener failed")

    def _tick(self) -> None:
        v = self._view
        now = time.monotonic()
        status = self._status()
        back_in = countdown = None
        if self._auto_home_at is not None:
            left = self._auto_home_at - now
            if left <= 0:
                self._home()
                return
            back_in = int(left + 0.999)
        elif v.screen != "home":  # maintenance too: a technician who walks away is signed out
            countdown = self.session.countdown(now)
            if countdown == 0:
                log.info(
                    "idle for %ss: back home, patient forgotten", self.cfg.kiosk.idle_timeout_s
                )
                self._home()
                return
        if (status, countdown, back_in) != (v.status, v.countdown, v.back_in):
            self._emit(replace(v, status=status, countdown=countdown, back_in=back_in))

    def _home(self) -> None:
        now = time.monotonic()
        self.session.forget(now)
        self._survey_run = None
        self.lang = self.cfg.kiosk.language
        self._show("home")

    def _activity(self) -> None:
        self.session.touch(time.monotonic())
        if self._view.countdown is not None:
            self._emit(replace(self._view, countdown=None))

    def _set_lang(self, lang: str) -> None:
        if lang in ("zh", "en"):
            self.lang = lang
            self.session.touch(time.monotonic())
            self._emit(replace(self._view, lang=lang, content=self._next_content()))

    def _next_content(self) -> int:
        self._content += 1
        return self._content

    def _go(self, screen: str) -> None:
        self.session.touch(time.monotonic())
        if screen == "home":
            self._home()
        elif screen == "checkin":
            self._show("checkin")
        elif screen == "guide":
            self._show("guide", {"directory": self.directory})
        elif screen == "feedback":
            self._show("feedback", {"directory": self.directory})
        elif screen == "survey":
            if self.survey is None:
                self._show(
                    "notice", {"title": "sv_title", "text": "sv_none"}, home_after=DONE_HOME_S
                )
            else:
                self._survey_run = SurveyRun(self.survey)
                self._show_question()
        elif screen == "pin":
            self._show("pin", {"disabled": not self.cfg.kiosk.maintenance_pin_sha256})
        else:
            log.warning("unknown screen %r", screen)

    def _back(self) -> None:
        self.session.touch(time.monotonic())
        screen = self._view.screen
        if screen == "survey" and self._survey_run is not None and self._survey_run.back():
            self._show_question()
        elif screen == "refused" and self.session.decisions:
            self._show_appointments()
        else:
            self._home()

    # -- check-in -----------------------------------------------------------------------------

    def _card(self, read: CardRead) -> None:
        now_m = time.monotonic()
        if self._view.screen == "maintenance":
            self._show(
                "maintenance",
                {
                    **self._maintenance_data(),
                    "message": json.dumps(read.to_json(), ensure_ascii=False),
                },
            )
            return
        if read.kind == "staff_card":
            self.session.forget(now_m)
            self._go("pin")
            return
        # Any card or QR, on any screen, starts a new patient's check-in.
        self.session.forget(now_m)
        self._survey_run = None
        if not read.valid:
            self._show(
                "notice",
                {"title": "unreadable_title", "text": "unreadable_text"},
                home_after=DONE_HOME_S,
            )
            return
        today = self._today()
        self.rosters.refresh_file(today)
        roster = self.rosters.today(today)
        if roster is None:
            self._show("noappt", {"no_roster": True})
            return
        if read.kind == "appointment_qr":
            a = roster.get(read.appointment or "")
            appts = [a] if a is not None else []
        else:
            appts = roster.for_token(read.token or "")
        if not appts:
            self._show("noappt", {"no_roster": False})
            return
        k = self.cfg.kiosk
        self.session.card_kind = read.kind
        self.session.token = read.token or ""
        self.session.decisions = decide_all(
            appts, self.now(), k.checkin_early_min, k.checkin_late_min, self.checkins
        )
        self._show_appointments()

    def _show_appointments(self) -> None:
        items = []
        for d in self.session.decisions:
            a = d.appointment
            dept = self.directory.department(a.department_id)
            state = ("reprint" if d.repeat else "checkin") if d.allowed else (d.refusal or "")
            items.append(
                {
                    "id": a.id,
                    "queue_no": a.queue_no,
                    "doctor": a.doctor,
                    "room": a.room,
                    "department": a.department,
                    "department_en": dept.name_en if dept else "",
                    "time": slot_text(a),
                    "state": state,
                    "hhmm": d.come_back_hhmm,
                }
            )
        name = self.session.decisions[0].appointment.name if self.session.decisions else ""
        self._show(
            "appointments",
            {"patient": name, "items": items, "focus": first_allowed(self.session.decisions)},
        )

    def _decision(self, appointment_id: str) -> Decision | None:
        for d in self.session.decisions:
            if d.appointment.id == appointment_id:
                return d
        return None

    def _choose(self, appointment_id: str) -> None:
        self.session.touch(time.monotonic())
        if self._view.screen != "appointments":
            # A second Enter or tap queued behind a check-in must not check in twice.
            log.info("choose %s ignored on screen %s", appointment_id, self._view.screen)
            return
        d = self._decision(appointment_id)
        if d is None:
            log.warning("choose: %s is not among this patient's appointments", appointment_id)
            return
        if not d.allowed:
            self._show(
                "refused",
                {"reason": d.refusal, "hhmm": d.come_back_hhmm, "slot": slot_text(d.appointment)},
            )
            return
        self._check_in(d)

    def _place(self, department_id: str) -> Place:
        dept = self.directory.department(department_id)
        if dept is None:
            return Place()
        return Place(dept.floor, dept.location, dept.name_en)

    def _printer_usable(self) -> str:
        """The ticket outcome expected before printing: none | failed | printed."""
        if self.printer is None or self.printer.state == DeviceState.DISABLED:
            return "none"
        if self.printer.state in (DeviceState.ERROR, DeviceState.ABSENT):
            return "failed"
        return "printed"

    def _check_in(self, d: Decision) -> None:
        a = d.appointment
        expected = self._printer_usable()
        data = {
            "appointment": a.id,
            "department_id": a.department_id,
            "queue_no": a.queue_no,
            "card_kind": self.session.card_kind or "appointment_qr",
            "token": self.session.token or a.token,
            "timing": d.timing,
            "ticket": expected,
            "repeat": d.repeat,
        }
        try:
            # SPEC 4.1: durable before the ticket prints or the patient is told anything.
            self.uplink.record("checkin", data)
        except StorageError:
            self._show(
                "notice", {"title": "failed_title", "text": "failed_text"}, home_after=DONE_HOME_S
            )
            return
        place = self._place(a.department_id)
        ticket = expected
        if expected == "printed":
            doc = checkin_ticket(a, place, self.lang, self.cfg.device.id, self.now(), d.repeat)
            result = self.printer.print_document(doc)
            if not result.ok:
                ticket = "failed"
                # The event already says "printed" (it had to be durable first): this alert
                # carries the correction for the site.
                self._alert(
                    "printer",
                    "warning",
                    f"ticket for {a.id} failed to print: {result.error}; shown on screen",
                    appointment=a.id,
                    ticket="failed",
                )
        if not d.repeat:
            # After the ticket, to keep Enter -> paper short; the durable record is the event.
            try:
                self.checkins.add(a.id, self._today(), a.queue_no)
            except OSError as e:
                log.error("could not remember check-in %s: %s", a.id, e)
        dept = self.directory.department(a.department_id)
        where = " ".join(x for x in (place.floor, a.room) if x) or a.department
        self._show(
            "done",
            {
                "queue_no": a.queue_no,
                "department": a.department,
                "department_en": dept.name_en if dept else "",
                "where": where,
                "location": place.location,
                "doctor": a.doctor,
                "time": slot_text(a),
                "ticket": ticket,
                "qr": appointment_qr(a.id),
                "appointment": a.id,
                "repeat": d.repeat,
            },
            home_after=TICKET_ON_SCREEN_HOME_S if ticket == "failed" else DONE_HOME_S,
        )

    # -- feedback and survey -------------------------------------------------------------------

    def _feedback(self, form: FeedbackForm) -> None:
        self.session.touch(time.monotonic())
        if self._view.screen != "feedback":
            return  # a double tap on "submit" sends one feedback
        problem = form.problem()
        if problem:
            log.warning("feedback not sent: %s", problem)
            return
        today = self._today()
        try:
            tracking = self.tracking.next(today)
            self.uplink.record("feedback", form.event_data(tracking))
        except (StorageError, OSError) as e:
            log.error("feedback could not be stored: %s", e)
            self._show(
                "notice", {"title": "failed_title", "text": "failed_text"}, home_after=DONE_HOME_S
            )
            return
        printed = False
        if self._printer_usable() == "printed":
            dept = self.directory.department(form.department_id or "")
            dept_name = dept.display(self.lang) if dept else ""
            topics = form.topics
            slip = feedback_slip(
                tracking, form.category, dept_name, topics, bool(form.phone), self.lang, self.now()
            )
            printed = self.printer.print_document(slip).ok
        self._show(
            "feedback_done",
            {
                "tracking_no": tracking,
                "printed": printed,
                "phone": mask_phone(form.phone) if form.phone else "",
            },
            home_after=DONE_HOME_S if printed else TICKET_ON_SCREEN_HOME_S,
        )

    def _show_question(self) -> None:
        run = self._survey_run
        if run is None:
            return
        if run.finished:
            self._survey_done()
            return
        q = run.question
        self._show(
            "survey",
            {
                "qid": q.id,
                "text": q.text,
                "text_en": q.text_en,
                "scale": q.scale,
                "i": run.index + 1,
                "n": len(run.survey.questions),
                "answer": run.answers.get(q.id),
            },
        )

    def _survey_answer(self, score: int | None, qid: str | None = None) -> None:
        self.session.touch(time.monotonic())
        run = self._survey_run
        if run is None or self._view.screen != "survey" or run.finished:
            return
        if qid is not None and run.question.id != qid:
            return
        try:
            run.answer(score)
        except SurveyError as e:
            log.warning("survey: %s", e)
            return
        self._show_question()

    def _survey_done(self) -> None:
        run = self._survey_run
        self._survey_run = None
        if run is not None and run.answers:
            try:
                self.uplink.record("survey", run.event_data())
            except StorageError:
                self._home()
                return
        self._show("notice", {"title": "sv_done_title", "text": ""}, home_after=DONE_HOME_S // 2)

    # -- retained data ---------------------------------------------------------------------------

    def _roster(self, payload: bytes) -> None:
        if not self.documents["roster"].offer(payload).accepted:
            return  # refused, or for another date (kept aside): today's stays in place
        try:
            self.rosters.received(payload, self._today())
        except RosterError as e:
            log.error("roster from MQTT ignored: %s", e)
        except OSError as e:
            log.error("roster received but not kept on disk: %s", e)
        self._tick()

    def _directory(self, raw: bytes | dict[str, Any], save: bool) -> None:
        if isinstance(raw, bytes) and not self.documents["directory"].offer(raw).accepted:
            return
        try:
            self.directory = Directory.parse(raw)
        except (DirectoryError, ValueError) as e:
            log.error("directory ignored: %s", e)
            return
        if save and isinstance(raw, bytes):
            _keep(self._dir_path, raw)

    def _survey(self, raw: bytes | dict[str, Any], save: bool) -> None:
        if isinstance(raw, bytes) and not self.documents["survey"].offer(raw).accepted:
            return
        try:
            self.survey = Survey.parse(raw)
        except (SurveyError, ValueError) as e:
            log.error("survey ignored: %s", e)
            return
        if save and isinstance(raw, bytes):
            _keep(self._survey_path, raw)

    # -- devices and alerts ----------------------------------------------------------------------

    def _printer_state(self) -> str:
        return self.printer.state.value if self.printer is not None else "disabled"

    def _alert(self, kind: str, severity: str, message: str, **details: Any) -> None:
        try:
            self.uplink.alert(kind, severity, message, **details)
        except StorageError:
            log.error("alert %s could not be stored", kind)

    def _device_state(self, name: str, state: DeviceState, detail: str) -> None:
        if state in (DeviceState.ERROR, DeviceState.ABSENT):
            self._faulted.add(name)
            self._alert(
                name,
                "critical" if name == "printer" else "warning",
                f"{name.replace('_', ' ')} {state.value}: {detail or 'no detail'}",
                state=state.value,
                detail=detail,
            )
        elif state == DeviceState.OK and name in self._faulted:
            # Only a recovery is news; a device coming up at start-up is not.
            self._faulted.discard(name)
            self._alert(name, "info", f"{name.replace('_', ' ')} ok again", state="ok")
        self._tick()

    # -- maintenance ------------------------------------------------------------------------------

    def _pin(self, pin: str) -> None:
        now = time.monotonic()
        want = self.cfg.kiosk.maintenance_pin_sha256
        if not want:
            self._show("pin", {"disabled": True})
            return
        if now < self._pin_locked_until:
            self._show("pin", {"error": "pin_bad", "locked": True})
            return
        got = hashlib.sha256(pin.encode()).hexdigest()
        if hmac.compare_digest(got, want):
            self._pin_fails = 0
            log.info("maintenance opened")
            self._show("maintenance", self._maintenance_data())
            return
        self._pin_fails += 1
        log.warning("maintenance: wrong PIN (%d)", self._pin_fails)
        if self._pin_fails >= PIN_TRIES:
            self._pin_fails = 0
            self._pin_locked_until = now + PIN_LOCK_S
        self._show("pin", {"error": "pin_bad"})

    def _maintenance_data(self) -> dict[str, Any]:
        today = self._today()
        roster = self.rosters.current
        link = getattr(self.uplink, "link", None)
        try:
            st = self.uplink.outbox.stats()
            outbox = {
                "waiting": st.waiting,
                "sent_unacked": st.sent_unacked,
                "last_seq": st.last_seq,
                "oldest_waiting_s": st.oldest_waiting_s,
            }
        except Exception as e:
            outbox = {"error": str(e)}
        return {
            "rows": [
                ("mt_device", f"{self.cfg.device.id} ({self.cfg.device.site})"),
                (
                    "mt_broker",
                    f"{self.cfg.mqtt.url} "
                    f"{'connected' if link is not None and link.connected.is_set() else 'not connected'}",
                ),
                ("mt_outbox", ", ".join(f"{k} {v}" for k, v in outbox.items())),
                (
                    "mt_printer",
                    f"{self._printer_state()} {getattr(self.printer, 'detail', '')}".strip(),
                ),
                (
                    "mt_card_reader",
                    self.card_reader.state.value if self.card_reader else "disabled",
                ),
                (
                    "mt_roster",
                    f"{roster.date} {len(roster)} appointments ({roster.source})"
                    if roster
                    else f"none {self.rosters.problem}".strip(),
                ),
                ("mt_checkins", str(self.checkins.count(today))),
                ("mt_directory", f"{len(self.directory.departments)} departments"),
                ("mt_survey", self.survey.id if self.survey else "none"),
            ],
            "message": "",
        }

    def _print_test(self) -> tuple[bool, str | None]:
        if self.printer is None:
            return False, 'no printer configured ([printer].driver = "none")'
        doc = Document(
            (
                Text(tr("test_ticket", self.lang), align="center", bold=True),
                Rule(),
                Text("中文 GB18030 测试 ABC 123"),
                Text(f"{self.cfg.device.id} {self.now():%Y-%m-%d %H:%M:%S}"),
                Feed(2),
            ),
            title="test",
        )
        r = self.printer.print_document(doc)
        return r.ok, r.error

    def _maintenance(self, action: str) -> None:
        if self._view.screen != "maintenance":
            return
        if action == "test_printer":
            ok, err = self._print_test()
            status = {}
            try:
                if self.printer is not None:
                    status = self.printer.status().to_json()
            except Exception as e:
                status = {"error": str(e)}
            msg = ("printed" if ok else f"failed: {err}") + " " + json.dumps(status)
            self._show("maintenance", {**self._maintenance_data(), "message": msg})
        elif action == "test_reader":
            self._show("maintenance", {**self._maintenance_data(), "message": "mt_reader_wait"})
        elif action == "exit":
            log.info("maintenance: exit requested")
            if self.on_exit is not None:
                self.on_exit()
        else:
            self._home()


def _keep(path: Path, raw: bytes) -> None:
    try:
        write_bytes_durably(path, raw)
    except OSError as e:
        log.error("could not keep %s: %s", path, e)
