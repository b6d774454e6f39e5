"""Linux input events: `struct input_event` bytes to events, key codes to names, a wedge's keys to text.

Pure decoding (the device part lives in `drivers.evdev_device`). The struct is
`{struct timeval time; __u16 type; __u16 code; __s32 value;}`: 24 bytes on 64-bit
kernels, 16 on 32-bit ones; native layout, as the kernel writes it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENT = struct.Struct("@llHHi")
EV_SYN, EV_KEY, EV_MSC = 0x00, 0x01, 0x04
SYN_DROPPED = 3  # the kernel's buffer overflowed: events were lost, key state is unknown
RELEASE, PRESS, REPEAT = 0, 1, 2


def _key_names() -> dict[int, str]:
    try:  # python-evdev only for its key-name table; optional (not on every platform)
        from evdev import ecodes
    except ImportError:  # pragma: no cover - evdev is a dependency on Linux
        return {}
    names: dict[int, str] = {}
    for code, name in ecodes.KEY.items():
        if isinstance(name, list | tuple):
            # aliases: prefer the name a technician would type
            name = next((n for n in name if not n.startswith("KEY_MIN")), name[0])
        names[int(code)] = str(name)
    return names


KEY_NAMES = _key_names()
KEY_CODES = {name: code for code, name in KEY_NAMES.items()}


@dataclass(frozen=True)
class InputEvent:
    t: float
    type: int
    code: int
    value: int

    @property
    def key(self) -> str:
        return KEY_NAMES.get(self.code, f"KEY_{self.code}")


def pack(t: float, type_: int, code: int, value: int) -> bytes:
    sec = int(t)
    return EVENT.pack(sec, int(round((t - sec) * 1_000_000)), type_, code, value)


def key_event_bytes(t: float, key: str | int, value: int) -> bytes:
    """A key event followed by its SYN_REPORT, as a keyboard sends it."""
    code = KEY_CODES[key] if isinstance(key, str) else key
    return pack(t, EV_KEY, code, value) + pack(t, EV_SYN, 0, 0)


class EventStream:
    """Bytes in, whole events out; a partial event waits for the rest of its bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[InputEvent]:
        self._buf += data
        n = len(self._buf) // EVENT.size
        out = []
        for i in range(n):
            sec, usec, type_, code, value = EVENT.unpack_from(self._buf, i * EVENT.size)
            out.append(InputEvent(sec + usec / 1_000_000, type_, code, value))
        del self._buf[: n * EVENT.size]
        return out


# US layout, which barcode and card readers use in HID keyboard mode: name -> (plain, shifted)
KEY_CHARS: dict[str, tuple[str, str]] = {
    **{f"KEY_{c}": (c.lower(), c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    **{f"KEY_{d}": (d, s) for d, s in zip("1234567890", "!@#$%^&*()", strict=True)},
    **{f"KEY_KP{d}": (d, d) for d in "0123456789"},
    "KEY_MINUS": ("-", "_"),
    "KEY_EQUAL": ("=", "+"),
    "KEY_LEFTBRACE": ("[", "{"),
    "KEY_RIGHTBRACE": ("]", "}"),
    "KEY_SEMICOLON": (";", ":"),
    "KEY_APOSTROPHE": ("'", '"'),
    "KEY_GRAVE": ("`", "~"),
    "KEY_BACKSLASH": ("\\", "|"),
    "KEY_COMMA": (",", "<"),
    "KEY_DOT": (".", ">"),
    "KEY_SLASH": ("/", "?"),
    "KEY_SPACE": (" ", " "),
    "KEY_KPMINUS": ("-", "-"),
    "KEY_KPPLUS": ("+", "+"),
    "KEY_KPASTERISK": ("*", "*"),
    "KEY_KPSLASH": ("/", "/"),
    "KEY_KPDOT": (".", "."),
}
SHIFTS = ("KEY_LEFTSHIFT", "KEY_RIGHTSHIFT")
ENTERS = ("KEY_ENTER", "KEY_KPENTER")
GAP_S = 0.3
MAX_CHARS = 512


class WedgeDecoder:
    """Key events of a keyboard-wedge reader to lines (SPEC 6.2).

    Shift (either side) and Caps Lock apply; KEY_ENTER ends a line; a gap over 300 ms
    between key presses drops what came before (a new line starts); auto-repeat (value 2)
    is ignored; a key with no character in the layout spoils the line (it is rejected).
    """

    def __init__(self, gap_s: float = GAP_S) -> None:
        self.gap_s = gap_s
        self._chars: list[str] = []
        self._bad = False
        self._shift: set[str] = set()
        self._caps = False
        self._last_press: float | None = None
        self.rejected = 0

    def feed(self, ev: InputEvent) -> str | None:
        """The finished line when this event ends one, else None."""
        if ev.type == EV_SYN and ev.code == SYN_DROPPED:
            if self._chars:
                self.rejected += 1  # keys of this line were lost
            self._chars, self._bad = [], False
            self._shift.clear()
            return None
        if ev.type != EV_KEY:
            return None
        name = ev.key
        if name in SHIFTS and ev.value == RELEASE:
            self._shift.discard(name)
            return None
        if ev.value != PRESS:
            return None
        if self._last_press is not None and ev.t - self._last_press > self.gap_s:
            # a new scan: what came before, and any modifier left "held" by noise, is stale
            self._chars, self._bad = [], False
            self._shift.clear()
            self._caps = False
        self._last_press = ev.t
        if name in SHIFTS:
            self._shift.add(name)
            return None
        if name == "KEY_CAPSLOCK":
            self._caps = not self._caps
            return None
        if name in ENTERS:
            chars, bad = self._chars, self._bad
            self._chars, self._bad = [], False
            if bad or len(chars) > MAX_CHARS:
                self.rejected += 1
                return None
            return "".join(chars) or None
        pair = KEY_CHARS.get(name)
        if pair is None:
            self._bad = True
            return None
        shifted = bool(self._shift)
        if self._caps and name[4:].isalpha() and len(name) == 5:
            shifted = not shifted
        if len(self._chars) <= MAX_CHARS:
            self._chars.append(pair[1] if shifted else pair[0])
        return None


def text_to_key_events(text: str, t0: float, step: float = 0.01) -> bytes:
    """The bytes a US-layout wedge sends to type `text` and Enter (for tests and the demo)."""
    reverse: dict[str, tuple[str, bool]] = {}
    for name, (plain, shifted) in KEY_CHARS.items():
        if name.startswith("KEY_KP"):
            continue
        reverse.setdefault(plain, (name, False))
        reverse.setdefault(shifted, (name, True))
    out = bytearray()
    t = t0
    for ch in text:
        name, shift = reverse[ch]
        if shift:
            out += key_event_bytes(t, "KEY_LEFTSHIFT", PRESS)
        out += key_event_bytes(t, name, PRESS) + key_event_bytes(t + step / 2, name, RELEASE)
        if shift:
            out += key_event_bytes(t + step / 2, "KEY_LEFTSHIFT", RELEASE)
        t += step
    out += key_event_bytes(t, "KEY_ENTER", PRESS) + key_event_bytes(
        t + step / 2, "KEY_ENTER", RELEASE
    )
    return bytes(out)
