"""Builds the keypad `[buttons]` names; the apps never see a device path."""

from __future__ import annotations

from drivers.buttons.base import KeySource
from terminal.config import DeviceConfig


def open_keypad(cfg: DeviceConfig, config_file: str = "device.toml") -> KeySource | None:
    """The configured key source, or None for `touch` (the screen's own buttons)."""
    b = cfg.buttons
    names = set(b.keys)
    debounce = cfg.rating.debounce_ms
    if b.driver == "serial":
        from drivers.buttons.serial_keypad import SerialKeypad

        return SerialKeypad(b.device, b.baudrate, names, debounce)
    if b.driver == "evdev":
        from drivers.buttons.evdev_keypad import EvdevKeypad

        return EvdevKeypad(b.device, names, debounce)
    if b.driver in ("keyboard", "sim"):
        from drivers.buttons.sim import SimulatedKeypad

        return SimulatedKeypad(names, debounce)
    return None
