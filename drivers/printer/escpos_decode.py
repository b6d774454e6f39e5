"""Reads ESC/POS bytes back into what the paper shows: lines with size and alignment, QR codes, cut.

For tests (ours and the kiosk's) and for the simulated printer's checks. Strict: a command
it does not know raises `DecodeError`, so a builder mistake cannot pass silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DecodeError(ValueError):
    pass


@dataclass
class Line:
    text: str
    double: bool = False
    bold: bool = False
    align: str = "left"
    chinese: bool = False
    """Whether FS & (Chinese character mode) was on when the line was printed."""


@dataclass
class Raster:
    width: int
    """In dots."""
    height: int
    rows: list[list[bool]]


@dataclass
class Ticket:
    lines: list[Line] = field(default_factory=list)
    qr: list[str] = field(default_factory=list)
    """Payloads of native (GS ( k) QR codes, in print order."""
    images: list[Raster] = field(default_factory=list)
    cut: bool = False
    initialized: bool = False
    feeds: int = 0
    status_requests: list[int] = field(default_factory=list)
    code_table: int | None = None
    """The last `ESC t n` (python-escpos selects one before its own text)."""

    @property
    def texts(self) -> list[str]:
        return [ln.text for ln in self.lines]

    def find(self, needle: str) -> Line | None:
        return next((ln for ln in self.lines if needle in ln.text), None)


ALIGNS = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}


def decode(data: bytes, encoding: str = "gb18030") -> Ticket:
    t = Ticket()
    i = 0
    n = len(data)
    buf = bytearray()
    state = {"double": False, "bold": False, "align": "left", "chinese": False}
    qr_store: bytes | None = None

    def need(k: int) -> bytes:
        if i + k > n:
            raise DecodeError(f"command at byte {i} is cut short")
        return data[i : i + k]

    def flush() -> None:
        t.lines.append(
            Line(
                buf.decode(encoding, errors="replace"),
                state["double"],
                state["bold"],
                state["align"],
                state["chinese"],
            )
        )
        buf.clear()

    while i < n:
        b = data[i]
        if b == 0x0A:
            flush()
            i += 1
        elif b == 0x1B:
            cmd = need(2)[1]
            if cmd == 0x40:  # ESC @
                t.initialized = True
                state.update(double=False, bold=False, align="left", chinese=False)
                i += 2
            elif cmd == 0x61:  # ESC a n
                state["align"] = ALIGNS.get(need(3)[2], "left")
                i += 3
            elif cmd == 0x45:  # ESC E n
                state["bold"] = bool(need(3)[2] & 1)
                i += 3
            elif cmd == 0x21:  # ESC ! n
                m = need(3)[2]
                state["double"] = bool(m & 0x30)
                state["bold"] = bool(m & 0x08)
                i += 3
            elif cmd == 0x64:  # ESC d n
                t.feeds += need(3)[2]
                i += 3
            elif cmd == 0x74:  # ESC t n: code table for single-byte characters
                t.code_table = need(3)[2]
                i += 3
            else:
                raise DecodeError(f"unknown ESC {cmd:#04x} at byte {i}")
        elif b == 0x1C:
            cmd = need(2)[1]
            if cmd == 0x26:  # FS &
                state["chinese"] = True
            elif cmd == 0x2E:  # FS .
                state["chinese"] = False
            else:
                raise DecodeError(f"unknown FS {cmd:#04x} at byte {i}")
            i += 2
        elif b == 0x1D:
            cmd = need(2)[1]
            if cmd == 0x21:  # GS ! n
                m = need(3)[2]
                state["double"] = (m & 0x0F) > 0 and (m & 0xF0) > 0
                i += 3
            elif cmd == 0x56:  # GS V m [n]
                m = need(3)[2]
                t.cut = True
                i += 4 if m in (65, 66, 97, 98, 103, 104) else 3
            elif cmd == 0x28 and need(3)[2] == 0x6B:  # GS ( k pL pH cn fn ...
                head = need(7)
                plen = head[3] | head[4] << 8
                body = need(5 + plen)[5:]
                if len(body) < 2 or body[0] != 0x31:
                    raise DecodeError(f"GS ( k at byte {i} is not a QR function")
                fn = body[1]
                if fn == 0x50:
                    qr_store = bytes(body[3:])
                elif fn == 0x51:
                    if qr_store is None:
                        raise DecodeError(f"QR print at byte {i} with nothing stored")
                    t.qr.append(qr_store.decode("utf-8", errors="replace"))
                i += 5 + plen
            elif cmd == 0x76 and need(3)[2] == 0x30:  # GS v 0 m xL xH yL yH data
                head = need(8)
                wb = head[4] | head[5] << 8
                h = head[6] | head[7] << 8
                raw = need(8 + wb * h)[8:]
                rows = [
                    [bool(raw[y * wb + (x >> 3)] & (0x80 >> (x & 7))) for x in range(wb * 8)]
                    for y in range(h)
                ]
                t.images.append(Raster(wb * 8, h, rows))
                i += 8 + wb * h
            else:
                raise DecodeError(f"unknown GS {cmd:#04x} at byte {i}")
        elif b == 0x10:
            if need(2)[1] != 0x04:
                raise DecodeError(f"unknown DLE command at byte {i}")
            t.status_requests.append(need(3)[2])
            i += 3
        elif b < 0x20:
            raise DecodeError(f"unexpected control byte {b:#04x} at byte {i}")
        else:
            buf.append(b)
            i += 1
    if buf:
        flush()
    return t


def raster_modules(img: Raster, modules: int, border: int = 1) -> list[list[bool]]:
    """Sample a raster QR (`border` quiet modules around it, python-escpos draws one) back
    into its module matrix."""
    total = modules + 2 * border
    scale = img.height // total
    if scale < 1:
        raise DecodeError("image is smaller than the QR it should hold")
    return [
        [
            img.rows[(y + border) * scale + scale // 2][(x + border) * scale + scale // 2]
            for x in range(modules)
        ]
        for y in range(modules)
    ]
