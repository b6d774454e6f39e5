"""Assembles a pad: uplink, keypad, staff-card reader, core service, and the screen or none."""

from __future__ import annotations

import logging
from typing import Any

from drivers.buttons.factory import open_keypad
from drivers.card_reader.base import CardRead, CardReader
from drivers.card_reader.factory import open_card_reader
from rating_pad.service import PAD_COMMANDS, PadService
from rating_pad.voice import Voice
from terminal import startup_gc
from terminal.cliutil import UsageError
from terminal.config import ConfigError, DeviceConfig
from terminal.lifecycle import Lifecycle
from terminal.uplink import Uplink

log = logging.getLogger("careterm.pad")


class Pad:
    """A whole pad, started and stopped as one (used by `careterm pad` and `careterm demo`)."""

    def __init__(self, cfg: DeviceConfig, config_file: str = "device.toml") -> None:
        self.cfg = cfg
        try:
            self.keypad = open_keypad(cfg, config_file)
        except ModuleNotFoundError as e:  # a driver this build does not carry
            raise ConfigError(
                config_file,
                "buttons.driver",
                f"{cfg.buttons.driver!r} is not available in this build "
                f'({e.name}); use "serial" or "touch"',
            ) from None
        self.card_reader: CardReader | None = None
        staff_topic = cfg.topics.site_document("staff")
        self._service: PadService | None = None
        self.uplink = Uplink(
            cfg,
            subscriptions={staff_topic: lambda t, p: self.service.on_staff_directory(t, p)},
            on_command=lambda n, b, r: self.service.on_command(n, b, r),
            app_commands=PAD_COMMANDS,
            telemetry=self._telemetry,
        )
        self.service = PadService(cfg, self.uplink, link_state=self._link_state)
        self.voice: Voice | None = None
        if cfg.rating.voice and cfg.rating.voice_volume > 0:
            self.voice = Voice(
                cfg.rating.voice_dir,
                language=cfg.rating.language,
                volume=cfg.rating.voice_volume,
            )
            self.service.on_view(self.voice.on_view)

    def _telemetry(self) -> dict[str, Any]:
        return {
            "buttons": self.keypad.state.value if self.keypad else "touch",
            "card_reader": self.card_reader.state.value if self.card_reader else None,
            "pad_state": self.service.machine.state.value,
        }

    def _link_state(self) -> tuple[bool, int]:
        """(connected to the broker, events waiting to be sent) for the clerk's status line."""
        return self.uplink.link.connected.is_set(), self.uplink.outbox.stats().waiting

    def healthy(self) -> bool:
        return self.service.is_alive() and self.uplink.link.is_alive()

    def start(self) -> None:
        # The service first: it reads what the outbox holds before the site's ack can
        # forget it (a rating stored just before a kill -9 closes its prompt).
        self.service.start()
        self.uplink.start()
        if self.keypad is not None:
            self.keypad.on_state(
                lambda st, detail: self.service.device_state("buttons", st.value, detail)
            )
            self.keypad.start(lambda press: self.service.press(press.key, press.t))
        self._start_card_reader()

    def _start_card_reader(self) -> None:
        if self.cfg.card_reader.driver == "none":
            return
        self.card_reader = open_card_reader(self.cfg)
        if self.card_reader is None:
            return

        self.card_reader.on_state(
            lambda st, detail: self.service.device_state("card_reader", st.value, detail)
        )
        self.card_reader.start(self.on_card_read)

    def on_card_read(self, read: CardRead) -> None:
        """Reader thread: only a valid staff card means something on a pad."""
        if (
            getattr(read, "kind", "") == "staff_card"
            and getattr(read, "valid", False)
            and getattr(read, "token", None)
        ):
            self.service.staff_card(read.token)
        else:
            log.info(
                "pad: a %s read ignored (only staff cards sign in or out)",
                getattr(read, "kind", "unknown"),
            )

    def stop(self) -> None:
        if self.keypad is not None:
            self.keypad.stop()
        if self.card_reader is not None:
            self.card_reader.stop()
        self.service.stop()
        if self.voice is not None:
            self.voice.close()
        self.uplink.stop()


def run_pad(cfg: DeviceConfig, config_file: str, *, headless: bool) -> int:
    if not headless:
        from rating_pad.ui.app import screen_problem  # Kivy: only a pad with a screen loads it

        problem = screen_problem()
        if problem:
            raise UsageError(problem)
    pad = Pad(cfg, config_file)
    if headless and pad.keypad is None:
        log.warning(
            'pad: --headless with [buttons] driver = "touch": no key can rate; '
            "only commands and staff cards work"
        )
    life = Lifecycle(healthy=pad.healthy)
    life.install_signal_handlers()
    pad.start()
    log.info(
        "pad %s at window %s started (%s mode, %s)",
        cfg.device.id,
        cfg.window.id,
        cfg.rating.mode,
        "headless" if headless else "screen",
    )
    try:
        if headless:
            life.ready("rating pad running (headless)")
            startup_gc.started()
            life.wait()
        else:
            from rating_pad.ui.app import run_ui  # Kivy: only a pad with a screen loads it

            life.ready("rating pad running")
            run_ui(pad, life)
    finally:
        life.stopping()
        pad.stop()
    return 0
