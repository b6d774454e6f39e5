"""Assembles a kiosk: uplink with the retained roster/directory/survey, card reader, printer,
the core service, and the Kivy screen.

`careterm kiosk` draws the attract screen first: the link to the broker is made (paho-mqtt, the
outbox) and its thread started, the core thread started, the documents read and the printer
opened (python-escpos's imports) once its first frame is on the screen.
On a Pi-class CPU everything done before that frame delays it (BENCHMARKS.md). The card reader
listens from the start: a card presented while the screen comes up waits in the core thread's
queue and is answered once the documents are read."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from drivers.card_reader.base import CardReader
from drivers.card_reader.factory import open_card_reader
from drivers.printer.base import TicketPrinter
from drivers.printer.deferred import DeferredPrinter
from drivers.speaker.base import Speaker
from drivers.speaker.factory import open_speaker
from kiosk.service import KIOSK_COMMANDS, KioskService
from kiosk.voice import Voice
from terminal.config import ConfigError, DeviceConfig
from terminal.lifecycle import Lifecycle

if TYPE_CHECKING:
    from terminal.uplink import Uplink

log = logging.getLogger("careterm.kiosk")

START_AFTER_MAX_S = 30.0
"""The longest `careterm kiosk` waits for the first frame before it starts its threads anyway."""


def _open_printer(cfg: DeviceConfig, *, later: bool = False) -> TicketPrinter | None:
    """The configured printer, None for driver = "none", or a faulted stand-in; with `later`, a
    `DeferredPrinter` that opens it when told to (or at its first use)."""
    if cfg.printer.driver == "none":
        return None
    if later:
        return DeferredPrinter(lambda: _open_configured_printer(cfg))
    return _open_configured_printer(cfg)


def _open_configured_printer(cfg: DeviceConfig) -> TicketPrinter:
    from drivers.printer.factory import FaultyPrinter, open_printer

    try:
        return open_printer(cfg)
    except (OSError, ConfigError) as e:
        log.error("printer cannot be opened: %s; tickets are shown on screen", e)
        return FaultyPrinter(f"cannot open: {e}")


def _open_card_reader(cfg: DeviceConfig) -> CardReader | None:
    """The configured card reader, or None for driver = "none"."""
    if cfg.card_reader.driver == "none":
        return None
    return open_card_reader(cfg)


class Kiosk:
    """A whole kiosk, started and stopped as one (used by `careterm kiosk` and `careterm demo`)."""

    def __init__(
        self,
        cfg: DeviceConfig,
        *,
        printer: TicketPrinter | None = None,
        card_reader: CardReader | None = None,
        speaker: Speaker | None = None,
        open_drivers: bool = True,
        documents_after: threading.Event | None = None,
        printer_later: bool = False,
        link_later: bool = False,
    ) -> None:
        """`documents_after`: the service reads its documents once it is set; `printer_later`:
        the configured printer is opened by `open_printer()` (or its first use); `link_later`:
        the uplink is made by `start()` (`uplink` is None until then)."""
        self.cfg = cfg
        self._lock = threading.Lock()
        self._listening = self._started = self._stopped = False
        self.printer = (
            printer
            if printer is not None or not open_drivers
            else _open_printer(cfg, later=printer_later)
        )
        self.card_reader = (
            card_reader if card_reader is not None or not open_drivers else _open_card_reader(cfg)
        )
        self.uplink: Uplink | None = None if link_later else self._make_uplink()
        if speaker is None and open_drivers and cfg.kiosk.voice:
            speaker = open_speaker(volume=cfg.kiosk.voice_volume / 100)
        self.speaker = speaker
        voice = Voice(speaker) if speaker is not None else None
        self.service = KioskService(
            cfg,
            self.uplink,
            self.printer,
            self.card_reader,
            voice=voice,
            documents_after=documents_after,
        )

    def _make_uplink(self) -> Uplink:
        from terminal.uplink import Uplink

        topics = self.cfg.topics
        return Uplink(
            self.cfg,
            subscriptions={
                topics.site_document("roster"): lambda t, p: self.service.on_roster(t, p),
                topics.site_document("directory"): lambda t, p: self.service.on_directory(t, p),
                topics.site_document("survey"): lambda t, p: self.service.on_survey(t, p),
            },
            on_command=lambda n, b, r: self.service.on_command(n, b, r),
            app_commands=KIOSK_COMMANDS,
            telemetry=lambda: self.service.telemetry(),
        )

    def healthy(self) -> bool:
        if not self._started:
            return not self._stopped  # still waiting for the screen (START_AFTER_MAX_S at most)
        return self.service.is_alive() and self.uplink is not None and self.uplink.link.is_alive()

    def listen(self) -> None:
        """Open the card reader now (`start` does it too); its reads wait for the core thread."""
        with self._lock:
            self._listen()

    def _listen(self) -> None:
        if self._listening or self._stopped:
            return
        self._listening = True
        self.service.wire()  # before the reader: its first state change is heard
        if self.card_reader is not None:
            self.card_reader.start(self.service.card_read)

    def start(self) -> None:
        with self._lock:
            if self._started or self._stopped:
                return
            self._listen()
            if self.uplink is None:
                self.uplink = self._make_uplink()
                self.service.attach(self.uplink)
            self._started = True
            self.uplink.start()
            self.service.start()

    def open_printer(self) -> None:
        """Open a printer made with `printer_later` now (a no-op for any other)."""
        if isinstance(self.printer, DeferredPrinter):
            try:
                self.printer.open()
            except Exception:
                log.exception("printer could not be opened")

    def start_after(
        self,
        drawn: threading.Event,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> threading.Thread:
        """Start once `drawn` is set (the first frame; at most START_AFTER_MAX_S), then open
        the printer; on a thread of its own, which is returned. A start that fails (the outbox
        cannot be opened, say) goes to `on_error`: the kiosk cannot work without its core."""

        def run() -> None:
            if not drawn.wait(START_AFTER_MAX_S):
                log.warning("no first frame after %d s: starting anyway", START_AFTER_MAX_S)
            try:
                self.start()
            except Exception as e:
                log.error("kiosk could not start: %s: %s", type(e).__name__, e)
                if on_error is not None:
                    on_error(e)
                return
            if self._started and not self._stopped:
                self.open_printer()

        t = threading.Thread(target=run, name="kiosk-start", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            listening = self._listening
        if listening and self.card_reader is not None:
            try:
                self.card_reader.stop()
            except Exception:
                log.exception("card reader did not stop cleanly")
        self.service.stop()
        if self.speaker is not None:
            self.speaker.close()
        if self.printer is not None:
            try:
                self.printer.close()
            except Exception:
                log.exception("printer did not close cleanly")
        if self.uplink is not None:
            self.uplink.stop()


def run_kiosk(cfg: DeviceConfig, config_file: str, *, windowed: bool = False) -> int:
    first_frame = threading.Event()  # set by the screen once the attract screen is drawn
    kiosk = Kiosk(cfg, documents_after=first_frame, printer_later=True, link_later=True)
    life = Lifecycle(healthy=kiosk.healthy)
    life.install_signal_handlers()
    kiosk.listen()
    failed: list[BaseException] = []

    def cannot_start(e: BaseException) -> None:
        failed.append(e)
        life.stop_event.set()  # the screen closes (run_ui watches it); the error is raised below

    starter = kiosk.start_after(first_frame, cannot_start)
    fullscreen = cfg.kiosk.fullscreen and not windowed
    log.info(
        "kiosk %s started (%s, %s)",
        cfg.device.id,
        cfg.kiosk.language,
        "fullscreen" if fullscreen else "windowed",
    )
    try:
        from kiosk.ui.app import run_ui

        life.ready("kiosk running")
        run_ui(kiosk, life, fullscreen=fullscreen, first_frame=first_frame)
    finally:
        life.stopping()
        kiosk.stop()  # before the starter is released: it then starts nothing
        first_frame.set()
        starter.join(10)
    if failed:
        raise failed[0]
    return 0
