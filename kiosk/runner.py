"""Assembles a kiosk: uplink with the retained roster/directory/survey, card reader, printer,
the core service, and the Kivy screen."""

from __future__ import annotations

import logging

from drivers.card_reader.base import CardReader
from drivers.card_reader.factory import open_card_reader
from drivers.printer.base import TicketPrinter
from drivers.printer.factory import open_printer
from kiosk.service import KioskService
from terminal.config import DeviceConfig
from terminal.lifecycle import Lifecycle
from terminal.uplink import Uplink

log = logging.getLogger("careterm.kiosk")


def _open_printer(cfg: DeviceConfig) -> TicketPrinter | None:
    """The configured printer, or None for driver = "none"."""
    if cfg.printer.driver == "none":
        return None
    return open_printer(cfg)


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
        open_drivers: bool = True,
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
        self.service = KioskService(cfg, self.uplink, self.printer, self.card_reader)

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
        if self.printer is not None:
            try:
                self.printer.close()
            except Exception:
                log.exception("printer did not close cleanly")
        self.uplink.stop()


def run_kiosk(cfg: DeviceConfig, config_file: str, *, windowed: bool = False) -> int:
    kiosk = Kiosk(cfg)
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
        run_ui(kiosk, life, fullscreen=fullscreen)
    finally:
        life.stopping()
        kiosk.stop()
    return 0
