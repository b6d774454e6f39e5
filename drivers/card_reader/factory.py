"""Builds the `[card_reader]` driver; the apps never see a device path or a raw card number.

Each kind's module is imported when it is the one configured: a kiosk starts with one reader, and
what it imports before its first frame is seconds of a Pi-class CPU (BENCHMARKS.md)."""

from __future__ import annotations

from drivers.card_reader.base import CardReader
from drivers.card_reader.classify import Classifier, compile_rules
from terminal.config import ConfigError, DeviceConfig
from terminal.privacy import SaltError, load_salt


def make_classifier(cfg: DeviceConfig, config_file: str | None = None) -> Classifier:
    """The configured rules with the site salt; a missing salt is a configuration error."""
    config_file = config_file or cfg.source
    try:
        salt = load_salt(cfg.privacy.salt_file)
    except SaltError as e:
        raise ConfigError(config_file, "privacy.salt_file", str(e)) from None
    return Classifier(compile_rules(cfg.card_reader.classify), salt)


def open_card_reader(cfg: DeviceConfig, config_file: str | None = None) -> CardReader | None:
    """The configured reader (not started), or None for `driver = "none"`.

    `keyboard` and `sim` give the simulated reader (`SimulatedCardReader.present(...)`).
    """
    c = cfg.card_reader
    config_file = config_file or cfg.source
    if c.driver == "none":
        return None
    classifier = make_classifier(cfg, config_file)
    if c.driver in ("keyboard", "sim"):
        from drivers.card_reader.sim import SimulatedCardReader

        cards = SimulatedCardReader.load_cards(c.device) if c.device else []
        return SimulatedCardReader(classifier, cards)
    if not c.device:
        raise ConfigError(
            config_file,
            "card_reader.device",
            f"driver {c.driver!r} needs a device path (/dev/serial/by-id/... "
            "or /dev/input/by-id/...)",
        )
    if c.driver == "idcard":
        from drivers.card_reader.idcard import IdCardReader

        return IdCardReader(c.device, c.baudrate, classifier)
    if c.driver == "serial":
        from drivers.card_reader.line_reader import SerialLineReader

        return SerialLineReader(c.device, c.baudrate, classifier)
    if c.driver == "evdev":
        # python-evdev brings asyncio (~70 ms of CPU at import, most of a second on a Pi-class
        # kiosk) that no other reader needs.
        from drivers.card_reader.evdev_reader import EvdevLineReader

        return EvdevLineReader(c.device, classifier)
    raise ConfigError(config_file, "card_reader.driver", f"unknown driver {c.driver!r}")
