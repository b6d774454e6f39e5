"""Builds the keypad `[buttons]` names; the apps never see a device path."""

from __future__ import annotations

from drivers.buttons.base import KeySource
from drivers.buttons.evdev_keypad import EvdevKeypad
from drivers.buttons.serial_keypad import SerialKeypad
from drivers.buttons.sim import SimulatedKeypad
from terminal.config import DeviceConfig


def open_keypad(cfg: DeviceConfig, config_file: str = "device.toml") -> KeySource | None:
    """The configured key source, or None for `touch` (the screen's own buttons)."""
    b = cfg.buttons
    names = set(b.keys)
    debounce = cfg.rating.debounce_ms
    if b.driver == "serial":
        return SerialKeypad(b.device, b.baudrate, names, debounce)
    if b.driver == "evdev":
        return EvdevKeypad(b.device, names, debounce)
    if b.driver in ("keyboard", "sim"):
        return SimulatedKeypad(names, debounce)
    return None
