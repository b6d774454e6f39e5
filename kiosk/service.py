"""The kiosk on its own thread: feeds every input to the pure `KioskMachine` and carries out the
effects it returns (outbox, printer, speaker, files, alerts). Drivers and the uplink are only
touched here, never on the UI thread; the UI renders the `View` this service publishes."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.base import DeviceState
from drivers.card_reader.base import CardRead, CardReader
from drivers.printer.base import PrinterStatus, TicketPrinter
from drivers.printer.document import Document, Feed, Rule, Text
from kiosk.directory import Directory
from kiosk.files import read_json, write_json_durably
from kiosk.i18n import tr
from kiosk.initials import initials as pinyin_initials
from kiosk.machine import (
    Alert,
    Effect,
    Exit,
    KioskMachine,
    Print,
    Record,
    Save,
    Speak,
    TestPrinter,
)
from kiosk.roster import Roster
from kiosk.survey import Survey
from kiosk.views import MaintenanceView, Screen, View
from kiosk.voice import Voice
from terminal import payloads
from terminal.config import DeviceConfig
from terminal.core import CoreLoop
from terminal.documents import DocumentStore, Prepared
from terminal.privacy import SaltError, load_salt
from terminal.roster_rows import in_child
from terminal.storage import StorageError

if TYPE_CHECKING:
    from terminal.uplink import Uplink

KIOSK_COMMANDS = ("print_test",)
"""The commands a kiosk takes besides the link's `ping` and `resend`: a pad's `prompt`, `staff`,
`pause` and `resume` are answered "not supported by this device"."""

log = logging.getLogger("careterm.kiosk")

TICK_S = 0.25
GUIDE_AFTER_S = 10.0
"""Pinyin initials of the directory's names that are not in INITIALS_FILE yet (the guide's A-Z,
made by a child process: kiosk.initials) are made this long after start-up by a thread of
their own (the core thread goes on reading cards meanwhile), or on the core thread before an
input that opens a screen (the guide, feedback) if one comes sooner: never before the first
frame of the attract screen."""
INITIALS_FILE = "pinyin-initials.json"

DOCUMENTS = ("roster", "directory", "survey")
OLD_FILES = {
    "roster": ("roster.json", "roster-aside.json"),
    "directory": ("directory.json",),
    "survey": ("survey.json",),
}
"""Where kiosks kept their documents in data_dir before terminal.documents: moved once."""

ViewListener = Callable[[View], None]

DOCUMENTS_AFTER_MAX_S = 30
"""The longest the documents wait for the screen's first frame (`documents_after`)."""


class KioskService:
    """Thread-safe inputs; everything runs on one `kiosk-core` thread in arrival order."""

    def __init__(
        self,
        cfg: DeviceConfig,
        uplink: Uplink | None,
        printer: TicketPrinter | None = None,
        card_reader: CardReader | None = None,
        *,
        voice: Voice | None = None,
        now: Callable[[], datetime] | None = None,
        on_exit: Callable[[], None] | None = None,
        documents_after: threading.Event | None = None,
    ) -> None:
        """`documents_after`: read the documents on disk once this is set (the screen's first
        frame: a 20,000-entry roster is seconds of a Pi's CPU), not while constructing.
        `uplink` None: `attach()` gives it before `start()` (`careterm kiosk` makes its link
        after the first frame)."""
        self.cfg = cfg
        self.uplink = uplink
        self.printer = printer
        self.card_reader = card_reader
        self.voice = voice
        self.now = now or (lambda: datetime.now().astimezone())
        self.on_exit = on_exit
        self.data_dir = cfg.data_dir
        _private_dir(self.data_dir)
        self.documents = {
            name: DocumentStore(
                name, self.data_dir, alert=self._alert, today=lambda: self.now().date()
            )
            for name in DOCUMENTS
        }
        """Roster, directory and survey: validated, last good one kept, another date's roster
        aside (terminal.documents, SPEC 9.4); the machine gets their indexed form."""
        self.roster_file = Path(cfg.kiosk.roster_file) if cfg.kiosk.roster_file else None
        self._file_mtime: float | None = None
        self.problems: dict[str, str] = {}
        """Why the last offered document was refused, by name (maintenance screen)."""
        self._in_use: dict[str, Any] = {}
        self._aside_dates: list[Any] = []
        self._indexed: list[tuple[payloads.Roster, Roster]] = []
        self._building = 0
        """Retained rosters being validated off the core thread (`_roster_news`; core thread)."""
        self._to_build: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._builder: threading.Thread | None = None
        self._started = time.monotonic()
        self._initials = False
        self._initials_for: Any = None
        salt = None
        try:
            salt = load_salt(cfg.privacy.salt_file)
        except SaltError as e:
            if "phone_birth" in cfg.kiosk.lookup:
                log.warning("%s: phone + birth date lookup is off", e)
        checkins = read_json(self.data_dir / "checkins.json")
        counter = read_json(self.data_dir / "feedback_counter.json")
        self.machine = KioskMachine(
            cfg,
            salt=salt,
            mono=time.monotonic,
            now=self.now,
            checkins=_checkins(checkins),
            feedback_count=_counter(counter),
        )
        self.machine.printer_enabled = printer is not None
        if printer is not None:
            self.machine.printer = printer.state
        if card_reader is not None:
            self.machine.reader = card_reader.state
        self._view: View = self.machine.view()
        self._listeners: list[ViewListener] = []
        self.core = CoreLoop("kiosk-core", tick=self._tick, tick_s=TICK_S, on_error=self._failed)
        self._wired = False
        if documents_after is None:
            self._load_documents()
        else:
            # The first job: a retained roster or a card read queued meanwhile comes after it.
            self.machine.loading = True
            self.core.put(lambda: self._load_documents_after(documents_after))
        self._view = self._make_view()

    # -- wiring ---------------------------------------------------------------------------

    def on_view(self, fn: ViewListener) -> None:
        self._listeners.append(fn)
        fn(self._view)

    @property
    def view(self) -> View:
        return self._view

    def attach(self, uplink: Uplink) -> None:
        """The uplink of a service made without one (before `start()`)."""
        self.uplink = uplink

    def start(self) -> None:
        if self.uplink is None:
            raise RuntimeError("KioskService.start() before attach(uplink)")
        self.wire()
        self.core.start()

    def wire(self) -> None:
        """Listen to the drivers' state changes (once): what they report before the core thread
        starts waits in its queue, in order."""
        if self._wired:
            return
        self._wired = True
        if self.printer is not None:
            self.printer.on_state(
                lambda s, d: self._put(lambda: self._run_effects(self._printer_state(s, d)))
            )
            if hasattr(self.printer, "on_status"):
                self.printer.on_status(lambda st: self._put(lambda: self._printer_news(st)))
        if self.card_reader is not None:
            self.card_reader.on_state(
                lambda s, d: self._put(
                    lambda: self._run_effects(self.machine.device_state("card_reader", s, d))
                )
            )

    def stop(self) -> None:
        self.core.stop(timeout=5.0)
        self._to_build.put(None)

    def is_alive(self) -> bool:
        return self.core.is_alive()

    @property
    def heartbeat(self) -> float:
        return self.core.heartbeat

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run `fn` on the core thread and return its result (tests, benchmarks, maintenance)."""
        return self.core.call(lambda: (self._sync_documents(), fn())[1], timeout)

    def _put(self, job: Callable[[], None]) -> None:
        # The documents first: a job just after midnight sees the new day's roster.
        self.core.put(lambda: (self._sync_documents(), job()))

    def _input(self, fn: Callable[[], list[Effect]]) -> None:
        self._put(lambda: self._run_effects(self._answered(fn)))

    def _guide_input(self, fn: Callable[[], list[Effect]]) -> None:
        """An input that may open the guide or the feedback form: the initials first."""
        self.core.put(
            lambda: (self._sync_documents(initials=True), self._run_effects(self._answered(fn)))
        )

    def _answered(self, fn: Callable[[], list[Effect]]) -> list[Effect]:
        """A patient's input, answered even when handling it fails (a bug, data nobody foresaw):
        the patient is told this kiosk cannot help now and where to go (SPEC 9.6), never left
        looking at a screen that did not change."""
        try:
            return fn()
        except Exception:
            log.exception("kiosk input failed; the patient is sent to the help desk")
            return self.machine.failed()

    # -- inputs (any thread) ---------------------------------------------------------------

    def card_read(self, read: CardRead) -> None:
        def job() -> list[Effect]:
            if self.machine.screen != Screen.MAINTENANCE:
                self._refresh_roster_file()
            return self.machine.card(read)

        self._input(job)

    def activity(self) -> None:
        """A touch or key anywhere: the patient is still there."""
        self._input(self.machine.activity)

    def go(self, screen: str) -> None:
        """home | checkin | lookup | guide | feedback | survey | pin."""
        self._guide_input(lambda: self.machine.go(screen))

    def back(self) -> None:
        self._input(self.machine.back)

    def choose(self, appointment_id: str) -> None:
        self._input(lambda: self.machine.choose(appointment_id))

    def set_language(self, lang: str) -> None:
        self._input(lambda: self.machine.set_language(lang))

    def set_care(self, on: bool | None = None) -> None:
        self._input(lambda: self.machine.set_care(on))

    def help(self) -> None:
        self._input(self.machine.help)

    def lookup_method(self, method: str) -> None:
        self._input(lambda: self.machine.lookup_method(method))

    def lookup_field(self, which: str) -> None:
        self._input(lambda: self.machine.lookup_field(which))

    def lookup_key(self, key: str) -> None:
        self._input(lambda: self.machine.lookup_key(key))

    def guide(self, letter: str | None = None, dept: str | None = None) -> None:
        self._guide_input(lambda: self.machine.guide(letter, dept))

    def feedback(self, action: str, value: str | None = None) -> None:
        self._guide_input(lambda: self.machine.feedback(action, value))

    def survey_answer(self, score: int | None, qid: str | None = None) -> None:
        self._input(lambda: self.machine.survey_answer(score, qid))

    def enter_pin(self, pin: str) -> None:
        self._input(lambda: self.machine.enter_pin(pin))

    def maintenance(self, action: str) -> None:
        """test_printer | test_reader | exit | close."""
        self._input(lambda: self.machine.maintenance(action))

    # retained messages (link thread: hand over, never parse there)

    def on_roster(self, topic: str, payload: bytes) -> None:
        self._put(lambda: self._roster_news(payload))

    def on_directory(self, topic: str, payload: bytes) -> None:
        self._put(lambda: self._document("directory", payload))

    def on_survey(self, topic: str, payload: bytes) -> None:
        self._put(lambda: self._document("survey", payload))

    def on_command(self, name: str, body: dict[str, Any], reply: Callable[..., None]) -> None:
        """The kiosk's own commands (KIOSK_COMMANDS); `ping` and `resend` are the link's."""
        if name == "print_test":

            def run() -> None:
                ok, err = self._print_test()
                reply(ok, {"printer": self._printer_state_name()} if ok else None, err)

            self._put(run)
        else:
            reply(False, None, f"unknown command {name!r}")

    def telemetry(self) -> dict[str, Any]:
        return {
            # SPEC 4: null where there is none (the maintenance screen says "disabled")
            "printer": self.printer.state.value if self.printer is not None else None,
            "card_reader": self.card_reader.state.value if self.card_reader else None,
            "buttons": None,
            "screen": str(self._view.screen),
        }

    # -- the core thread -------------------------------------------------------------------

    def _tick(self) -> None:
        """After every job and every TICK_S: network state, timeouts, midnight."""
        self._sync_documents()
        link = getattr(self.uplink, "link", None)
        if link is not None:
            self.machine.network_up = link.connected.is_set()
        self._run_effects(self.machine.tick())

    def _failed(self, e: BaseException) -> None:
        """A bug in one flow must not take the kiosk down (CoreLoop logged it): go home."""
        log.error("kiosk flow failed (%s); back to the home screen", type(e).__name__)
        self.machine._reset()
        self._publish()

    def _run_effects(self, effects: list[Effect]) -> None:
        """Carry out effects in order; results that matter go back into the machine."""
        todo = list(effects)
        while todo:
            eff = todo.pop(0)
            try:
                more = self._do(eff)
            except (StorageError, OSError) as e:
                log.error("could not %s: %s", type(eff).__name__.lower(), e)
                if isinstance(eff, Record) or (isinstance(eff, Save) and eff.must):
                    # nothing after it happens: no ticket, no number shown
                    todo = self.machine.storage_failed()
                continue
            todo[:0] = more
        self._publish()

    def _link(self) -> Uplink:
        """The uplink (the core thread runs only once it is attached: `start()`)."""
        assert self.uplink is not None
        return self.uplink

    def _alert(self, kind: str, severity: str, message: str, **details: Any) -> Any:
        return self._link().alert(kind, severity, message, **details)

    def _do(self, eff: Effect) -> list[Effect]:
        if isinstance(eff, Record):
            self._link().record(eff.etype, eff.data)
        elif isinstance(eff, Alert):
            try:
                self._alert(eff.kind, eff.severity, eff.message, **eff.details)
            except StorageError:
                log.error("alert %s could not be stored", eff.kind)
        elif isinstance(eff, Print):
            if self.printer is None:
                return self.machine.print_result(eff.job, False, "no printer")
            r = self.printer.print_document(eff.doc)
            if not r.ok:
                log.warning("printer: %s not printed: %s", eff.job, r.error)
            return self.machine.print_result(eff.job, r.ok, r.error)
        elif isinstance(eff, Speak):
            if self.voice is not None:
                self.voice.say(eff.clip, eff.lang, care=self.machine.care)
        elif isinstance(eff, Save):
            write_json_durably(self.data_dir / eff.name, eff.content)
        elif isinstance(eff, TestPrinter):
            ok, err = self._print_test()
            status: dict[str, Any] = {}
            try:
                if self.printer is not None:
                    status = self.printer.status().to_json()
            except Exception as e:
                status = {"error": str(e)}
            msg = ("printed" if ok else f"failed: {err}") + " " + json.dumps(status)
            return self.machine.maintenance_message(msg)
        elif isinstance(eff, Exit) and self.on_exit is not None:
            self.on_exit()
        return []

    def _make_view(self) -> View:
        v = self.machine.view()
        if v.screen == Screen.MAINTENANCE:
            v = replace(v, data=replace(v.data, rows=self._maintenance_rows()))
        return v

    def _publish(self) -> None:
        v = self._make_view()
        old = self._view
        if v == old:
            return
        self._view = v
        for fn in list(self._listeners):
            try:
                fn(v)
            except Exception:
                log.exception("view listener failed")

    # -- documents ---------------------------------------------------------------------------

    def _load_documents(self) -> None:
        """At start-up: the last good documents on disk (moved once from where older kiosks kept
        them), then the local `roster_file` and the directory and survey beside it."""
        beside = self.roster_file.parent if self.roster_file is not None else None
        local = {self.roster_file} | (
            {beside / f"{n}.json" for n in DOCUMENTS} if beside else set()
        )
        local_paths = {p.resolve() for p in local if p is not None}
        for name, store in self.documents.items():
            for old in OLD_FILES[name]:
                path = self.data_dir / old
                if path.resolve() not in local_paths:  # never move a configured file away
                    store.migrate(path)
            store.load()
        if self.roster_file is not None and not self.roster_file.exists():
            log.warning("[kiosk] roster_file %s does not exist (yet)", self.roster_file)
        self._refresh_roster_file()
        for name in ("directory", "survey"):
            path = beside / f"{name}.json" if beside is not None else None
            # Beside roster_file: a site without publishing (used when none was received).
            if path is not None and self.documents[name].current is None and path.exists():
                try:
                    self._offer(name, path.read_bytes(), str(path), save=False)
                except OSError as e:
                    log.error("%s: cannot read: %s", path, e.strerror)
        self._sync_documents()

    def _load_documents_after(self, ready: threading.Event) -> None:
        if not ready.wait(DOCUMENTS_AFTER_MAX_S):
            log.warning(
                "no first frame after %d s: reading the documents anyway", DOCUMENTS_AFTER_MAX_S
            )
        try:
            self._load_documents()
        finally:
            self.machine.loading = False
            self._publish()

    def _refresh_roster_file(self) -> None:
        """Offer `roster_file` at start and whenever it changed (one stat per card read); it is
        its own copy on disk, and never replaces a roster generated after it."""
        path = self.roster_file
        if path is None:
            return
        m = _mtime(path)
        if m is None or m == self._file_mtime:
            return
        self._file_mtime = m
        try:
            raw = path.read_bytes()
        except OSError as e:
            self.problems["roster"] = f"{path}: {e.strerror}"
            log.error("roster_file %s: cannot read: %s", path, e.strerror)
            return
        self._offer("roster", raw, f"roster_file {path}", save=False, if_newer=True)
        self._sync_documents()

    def _document(self, name: str, payload: bytes) -> None:
        """A retained document from the site (core thread)."""
        self._offer(name, payload, "mqtt")
        self._sync_documents()

    def _roster_news(self, payload: bytes) -> None:
        """A retained roster (core thread). One that would replace a roster in use and is big
        enough for a child process to validate (seconds at a Pi 3-class budget) is validated off
        the core thread, the roster in use answering card reads meanwhile; rosters arriving
        during that follow it, in order. Without a roster in use (the first boot, past
        midnight) it is validated here: a card read waits for it, as it must."""
        store = self.documents["roster"]
        if self._building == 0 and (store.current is None or not in_child(payload)):
            self._document("roster", payload)
            return
        self._building += 1
        if self._builder is None:
            self._builder = threading.Thread(target=self._build_rosters, name="kiosk-roster")
            self._builder.daemon = True  # a child still validating does not hold up an exit
            self._builder.start()
        self._to_build.put(payload)

    def _build_rosters(self) -> None:
        store = self.documents["roster"]
        while (payload := self._to_build.get()) is not None:
            try:
                prepared = store.prepare(payload)
            except Exception:  # never expected: prepare catches a bad payload
                log.exception("roster could not be validated off the core thread")
                prepared = None
            self._put(lambda p=payload, r=prepared: self._roster_built(p, r))

    def _roster_built(self, payload: bytes, prepared: Prepared | None) -> None:
        self._building -= 1
        self._offer("roster", payload, "mqtt", prepared=prepared)
        self._sync_documents()

    def _offer(self, name: str, payload: bytes, source: str, **kw: Any) -> None:
        r = self.documents[name].offer(payload, source, **kw)
        if r.fault:
            self.problems[name] = f"{source}: {r.fault}"
        elif r.accepted:
            self.problems.pop(name, None)
        if isinstance(r.document, payloads.Roster) and (r.accepted or r.kept_aside):
            self._index(r.document, source)

    def _index(self, doc: payloads.Roster, source: str = "stored") -> Roster:
        """The kiosk's index of a roster document, built once per document."""
        for d, r in self._indexed:
            if d is doc:
                return r
        r = Roster.of(doc, source)
        self._indexed = [(doc, r), *self._indexed[:7]]
        return r

    def _sync_documents(self, *, initials: bool = False) -> None:
        """Hand the documents in use to the machine when they change: a document accepted, or
        midnight (the roster kept aside for the new day takes over in the store). The directory
        first comes without its pinyin initials, then with them (GUIDE_AFTER_S, `initials`)."""
        store = self.documents["roster"]
        cur, aside = store.current, store.aside()
        if cur is not self._in_use.get("roster") or aside != self._aside_dates:
            self._in_use["roster"], self._aside_dates = cur, aside
            docs = [cur, *store.aside_rosters()]
            self.machine.set_rosters(
                self._index(cur) if isinstance(cur, payloads.Roster) else None,
                tuple(self._index(r) for r in docs[1:]),
            )
            # only those in use: a replaced roster's index file (removed by the store) is
            # closed, and its disk space freed, once nothing refers to it
            self._indexed = [(d, r) for d, r in self._indexed if any(d is u for u in docs)]
        d = self.documents["directory"].current
        if d is not self._in_use.get("directory") or (initials and not self._initials):
            self._in_use["directory"] = d
            self.machine.set_directory(self._directory(d, initials))
        if not self._initials and time.monotonic() - self._started >= GUIDE_AFTER_S:
            self._make_initials(d)
        sv = self.documents["survey"].current
        if sv is not self._in_use.get("survey"):
            self._in_use["survey"] = sv
            self.machine.set_survey(Survey.of(sv) if isinstance(sv, payloads.Survey) else None)

    def _make_initials(self, doc: Any) -> None:
        """The initials of `doc`'s names made on a thread of their own (a child process, a few
        seconds of a Pi's CPU), then the directory handed over again with them from the file."""
        if not isinstance(doc, payloads.Directory) or self._initials_for is doc:
            return  # (made once per directory document: a failure is not retried every tick)
        self._initials_for = doc
        names = [d.name for d in doc.departments]

        def make() -> None:
            try:
                pinyin_initials(names, self.data_dir / INITIALS_FILE, make=True)
            except Exception:
                log.exception("kiosk: the guide's pinyin initials could not be made")
            self.core.put(self._initials_made)

        threading.Thread(target=make, name="initials", daemon=True).start()

    def _initials_made(self) -> None:
        d = self.documents["directory"].current
        self._in_use["directory"] = d
        self.machine.set_directory(self._directory(d, make=False))

    def _directory(self, doc: Any, make: bool) -> Directory:
        """The guide's directory; its pinyin initials from the file, or (`make`) made."""
        if not isinstance(doc, payloads.Directory):
            self._initials = True
            return Directory()
        names = [d.name for d in doc.departments]
        table = pinyin_initials(names, self.data_dir / INITIALS_FILE, make=make)
        self._initials = all(n in table for n in names)
        return Directory.of(doc, initials=table)

    # -- devices -------------------------------------------------------------------------------

    def _printer_state(self, state: DeviceState, detail: str) -> list[Effect]:
        out = self.machine.device_state("printer", state, detail)
        can_report = bool(getattr(getattr(self.printer, "transport", None), "can_read", False))
        silent = can_report and state == DeviceState.UNKNOWN
        return out + self.machine.printer_status(self.machine.printer_near_end, silent)

    def _printer_news(self, st: PrinterStatus) -> None:
        self._run_effects(
            self.machine.printer_status(st.paper_near_end, self.machine.printer_silent)
        )

    def _printer_state_name(self) -> str:
        return self.printer.state.value if self.printer is not None else "disabled"

    def _print_test(self) -> tuple[bool, str | None]:
        if self.printer is None:
            return False, 'no printer configured ([printer].driver = "none")'
        doc = Document(
            (
                Text(tr("test_ticket", self.machine.lang), align="center", bold=True),
                Rule(),
                Text("中文 GB18030 测试 ABC 123"),
                Text(f"{self.cfg.device.id} {self.now():%Y-%m-%d %H:%M:%S}"),
                Feed(2),
            ),
            title="test",
        )
        r = self.printer.print_document(doc)
        return r.ok, r.error

    # -- maintenance ---------------------------------------------------------------------------

    def _maintenance_rows(self) -> tuple[tuple[str, str], ...]:
        m = self.machine
        today = self.now().date()
        roster = m.roster
        link = getattr(self.uplink, "link", None)
        try:
            st = self._link().outbox.stats()
            outbox = {
                "waiting": st.waiting,
                "sent_unacked": st.sent_unacked,
                "last_seq": st.last_seq,
                "oldest_waiting_s": st.oldest_waiting_s,
            }
        except Exception as e:
            outbox = {"error": str(e)}
        checkins = len(m.checked) if m.checked_day == today.isoformat() else 0
        aside = "".join(f"; aside {r.date}" for r in m.rosters_aside)
        problem = self.problems.get("roster", "")
        return (
            ("mt_device", f"{self.cfg.device.id} ({self.cfg.device.site})"),
            (
                "mt_broker",
                f"{self.cfg.mqtt.url} "
                f"{'connected' if link is not None and link.connected.is_set() else 'not connected'}",
            ),
            ("mt_outbox", ", ".join(f"{k} {v}" for k, v in outbox.items())),
            (
                "mt_printer",
                f"{self._printer_state_name()} {getattr(self.printer, 'detail', '')}".strip(),
            ),
            ("mt_card_reader", self.card_reader.state.value if self.card_reader else "disabled"),
            (
                "mt_roster",
                (
                    f"{roster.date} {len(roster)} appointments ({roster.source})"
                    if roster
                    else f"none {problem}".strip()
                )
                + aside,
            ),
            ("mt_checkins", str(checkins)),
            ("mt_directory", f"{len(m.directory.departments)} departments"),
            ("mt_survey", m.survey.id if m.survey else "none"),
        )


DATA_DIR_MODE = 0o750
"""data_dir holds the outbox (callback phone numbers, card tokens), today's roster and the
check-ins: closed to other users of the device, whatever the umask the kiosk started with (the
systemd unit's UMask=0027 does the same for the files; a kiosk started by hand has 0022)."""


def _private_dir(path: Path) -> None:
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
        if mode & 0o007:
            os.chmod(path, mode & ~0o007)
    except OSError as e:  # not ours (a folder a technician made): say so, run anyway
        log.warning("data_dir %s stays open to other users: %s", path, e)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _checkins(doc: Any) -> tuple[str, dict[str, str]]:
    if isinstance(doc, dict) and isinstance(doc.get("ids"), dict):
        return str(doc.get("date") or ""), {str(k): str(v) for k, v in doc["ids"].items()}
    return "", {}


def _counter(doc: Any) -> tuple[str, int]:
    if isinstance(doc, dict) and isinstance(doc.get("n"), int):
        return str(doc.get("date") or ""), doc["n"]
    return "", 0


__all__ = ["KioskService", "MaintenanceView", "View"]
