"""Assembles a kiosk: uplink with the retained roster/directory/survey, card reader, printer,
the core service, and the Kivy screen."""

from __future__ import annotations

import logging
import threading

from drivers.card_reader.base import CardReader
from drivers.card_reader.factory import open_card_reader
from drivers.printer.base import TicketPrinter
from drivers.printer.factory import FaultyPrinter, open_printer
from drivers.speaker.base import Speaker
from drivers.speaker.factory import open_speaker
from kiosk.service import KioskService
from kiosk.voice import Voice
from terminal.config import ConfigError, DeviceConfig
from terminal.lifecycle import Lifecycle
from terminal.uplink import Uplink

log = logging.getLogger("careterm.kiosk")


def _open_printer(cfg: DeviceConfig) -> TicketPrinter | None:
    """The configured printer, None for driver = "none", or a faulted stand-in."""
    if cfg.printer.driver == "none":
        return None
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
    ) -> None:
        self.cfg = cfg
        self.printer = printer if printer is not None or not open_drivers else _open_printer(cfg)
        self.card_reader = (
            card_reader if card_reader is not None or not open_drivers else _open_card_reader(cfg)
        )
        topics = cfg.topics
        self.uplink = Uplink(
            cfg,
            subscriptions={
                topics.site_document("roster"): lambda t, p: self.service.on_roster(t, p),
                topics.site_document("directory"): lambda t, p: self.service.on_directory(t, p),
                topics.site_document("survey"): lambda t, p: self.service.on_survey(t, p),
            },
            on_command=lambda n, b, r: self.service.on_command(n, b, r),
            telemetry=lambda: self.service.telemetry(),
        )
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

    def healthy(self) -> bool:
        return self.service.is_alive() and self.uplink.link.is_alive()

    def start(self) -> None:
        self.uplink.start()
        self.service.start()
        if self.card_reader is not None:
            self.card_reader.start(self.service.card_read)

    def stop(self) -> None:
        if self.card_reader is not None:
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
        self.uplink.stop()


def run_kiosk(cfg: DeviceConfig, config_file: str, *, windowed: bool = False) -> int:
    first_frame = threading.Event()  # the documents are read once the attract screen is up
    kiosk = Kiosk(cfg, documents_after=first_frame)
    life = Lifecycle(healthy=kiosk.healthy)
    life.install_signal_handlers()
    kiosk.start()
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
        kiosk.stop()
    return 0
