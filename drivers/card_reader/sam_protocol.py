"""Second-generation ID card SAM frames (SPEC 6.3, GA 467): builders, parser, text fields, check digit.

Pure functions and a resynchronising stream parser; no I/O. Other vendors frame differently
(`02 ... 03`), so the serial driver takes this module's parser as one swappable piece.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
LEN_BYTES = 2
MIN_LENGTH = 3  # a request: 2 command bytes + checksum
MAX_LENGTH = 4096  # the read reply is 1288; anything far larger is garbage, not a frame

CMD_FIND = b"\x20\x01"
CMD_SELECT = b"\x20\x02"
CMD_READ = b"\x30\x01"

SW_OK = b"\x00\x00\x90"
SW_FIND_OK = b"\x00\x00\x9f"
SW_NO_CARD = b"\x00\x00\x80"
SW_SELECT_FAILED = b"\x00\x00\x81"

TEXT_LEN = 256
PHOTO_LEN = 1024
READ_REPLY_LEN = 1295  # the whole frame, preamble to checksum

# (field, characters) in card order; 128 UCS-2 characters = 256 bytes.
TEXT_FIELDS: tuple[tuple[str, int], ...] = (
    ("name", 15),
    ("gender", 1),
    ("nation", 2),
    ("birth", 8),
    ("address", 35),
    ("number", 18),
    ("issuer", 15),
    ("valid_from", 8),
    ("valid_to", 8),
    ("reserved", 18),
)


class FrameError(ValueError):
    """A frame that is not one: bad checksum, bad length, wrong status, short data."""


def checksum(length_and_body: bytes) -> int:
    """XOR of the length bytes and the body."""
    x = 0
    for b in length_and_body:
        x ^= b
    return x


def build_frame(body: bytes) -> bytes:
    """Preamble, big-endian length (body + checksum), body, checksum."""
    n = len(body) + 1
    if not MIN_LENGTH <= n <= MAX_LENGTH:
        raise FrameError(f"body of {len(body)} bytes cannot be framed")
    head = n.to_bytes(LEN_BYTES, "big")
    return PREAMBLE + head + body + bytes([checksum(head + body)])


def find_request() -> bytes:
    return build_frame(CMD_FIND)


def select_request() -> bytes:
    return build_frame(CMD_SELECT)


def read_request() -> bytes:
    return build_frame(CMD_READ)


@dataclass(frozen=True)
class Frame:
    body: bytes
    """Everything between the length and the checksum."""

    @property
    def status(self) -> bytes:
        return self.body[:3]

    @property
    def data(self) -> bytes:
        return self.body[3:]


def parse_frame(raw: bytes) -> Frame:
    """One complete frame (strict: exact length, valid checksum)."""
    if not raw.startswith(PREAMBLE):
        raise FrameError("no preamble AA AA AA 96 69")
    if len(raw) < len(PREAMBLE) + LEN_BYTES + MIN_LENGTH:
        raise FrameError(f"frame of {len(raw)} bytes is too short")
    n = int.from_bytes(raw[5:7], "big")
    if not MIN_LENGTH <= n <= MAX_LENGTH:
        raise FrameError(f"length field {n} out of range")
    if len(raw) != 7 + n:
        raise FrameError(f"length field says {n} bytes follow, got {len(raw) - 7}")
    body, chk = raw[7:-1], raw[-1]
    if checksum(raw[5:-1]) != chk:
        raise FrameError(f"checksum {chk:02X} != {checksum(raw[5:-1]):02X}")
    return Frame(body)


class FrameParser:
    """Feeds bytes, yields whole frames; skips garbage and bad frames and counts them."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.rejected = 0

    def reset(self) -> None:
        self._buf.clear()

    @property
    def in_frame(self) -> bool:
        """Whether the start of a frame (its whole preamble) waits for the rest of its bytes;
        bytes that are not a frame (line noise) leave this False."""
        return self._buf.startswith(PREAMBLE)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while True:
            i = self._buf.find(PREAMBLE)
            if i < 0:
                # keep a tail that may be the start of a preamble split across reads
                keep = len(PREAMBLE) - 1
                if len(self._buf) > keep:
                    del self._buf[: len(self._buf) - keep]
                return out
            if i:
                del self._buf[:i]
            if len(self._buf) < 7:
                return out
            n = int.from_bytes(self._buf[5:7], "big")
            if not MIN_LENGTH <= n <= MAX_LENGTH:
                self.rejected += 1
                del self._buf[:1]  # resync on the next preamble
                continue
            if len(self._buf) < 7 + n:
                return out
            raw = bytes(self._buf[: 7 + n])
            try:
                out.append(parse_frame(raw))
            except FrameError:
                self.rejected += 1
                del self._buf[:1]
                continue
            del self._buf[: 7 + n]


def response_frame(status: bytes, data: bytes = b"") -> bytes:
    """A reply as the SAM module sends it (for the simulator and tests)."""
    if len(status) != 3:
        raise FrameError("status is 3 bytes")
    return build_frame(status + data)


# --- text fields ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IdText:
    name: str
    gender: str
    nation: str
    birth: str
    address: str
    number: str
    issuer: str
    valid_from: str
    valid_to: str

    def expired(self, today: dt.date) -> bool:
        """False for `长期` (long-term) and for dates we cannot parse (the card decides, not us)."""
        try:
            end = dt.datetime.strptime(self.valid_to, "%Y%m%d").date()
        except ValueError:
            return False
        return end < today


def decode_text(raw: bytes) -> IdText:
    """The 256-byte UCS-2LE text block split into its space-padded fields.

    Each field is its own fixed run of 2-byte units, decoded alone: a rare character sent as a
    UTF-16 surrogate pair (or a broken one, as U+FFFD) in the name or address never shifts
    the fields after it nor spoils the read (the ID number is checked by its check digit)."""
    if len(raw) != TEXT_LEN:
        raise FrameError(f"text block is {len(raw)} bytes, expected {TEXT_LEN}")
    values: dict[str, str] = {}
    pos = 0
    for field, width in TEXT_FIELDS:
        chunk = raw[pos * 2 : (pos + width) * 2]
        values[field] = chunk.decode("utf-16-le", "replace").rstrip(" \x00")
        pos += width
    values.pop("reserved")
    return IdText(**values)


def encode_text(fields: dict[str, str]) -> bytes:
    """The inverse of `decode_text` (for the simulator and tests); missing fields are blank."""
    out = []
    for field, width in TEXT_FIELDS:
        value = fields.get(field, "")
        if len(value) > width:
            raise FrameError(f"{field} is longer than {width} characters")
        out.append(value.ljust(width))
    return "".join(out).encode("utf-16-le")


def read_reply(text: bytes, photo: bytes = b"\x00" * PHOTO_LEN, status: bytes = SW_OK) -> bytes:
    """The 1295-byte reply to `30 01`."""
    data = len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big") + text + photo
    return response_frame(status, data)


def split_read_data(data: bytes) -> tuple[bytes, bytes]:
    """(text, photo) from the data part of a read reply, with the lengths checked.

    The text must be whole. The photo (vendor-compressed, never decoded here) may be shorter
    than its header says or missing, as some modules send it: the frame's checksum already
    vouches for the bytes, and a card must not become unreadable for a part nobody uses."""
    if len(data) < 4:
        raise FrameError("read reply has no length header")
    tlen = int.from_bytes(data[0:2], "big")
    plen = int.from_bytes(data[2:4], "big")
    if tlen != TEXT_LEN:
        raise FrameError(f"text length {tlen}, expected {TEXT_LEN}")
    if not 4 + tlen <= len(data) <= 4 + tlen + plen:
        raise FrameError(f"read reply carries {len(data) - 4} bytes, header says {tlen + plen}")
    return data[4 : 4 + tlen], data[4 + tlen :]
