"""The card-reader interface. A raw card number never leaves this package: only `CardRead`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.base import Watchable

CARD_KINDS = ("id_card", "medical_card", "appointment_qr", "staff_card")


@dataclass(frozen=True)
class CardRead:
    """One read (SPEC 6.4). `appointment` is set for `appointment_qr` reads instead of a token."""

    kind: str
    token: str | None
    masked: str
    name_masked: str | None = None
    valid: bool = True
    appointment: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "appointment_qr":
            out["appointment"] = self.appointment
        else:
            out["token"] = self.token
        out.update(masked=self.masked, name_masked=self.name_masked, valid=self.valid)
        return out


ReadListener = Callable[[CardRead], None]


class CardReader(Watchable, ABC):
    """Calls the listener once per card presentation, from the driver's own thread."""

    @abstractmethod
    def start(self, on_read: ReadListener) -> None:
        """Open the reader (in the background) and deliver reads to `on_read`."""

    @abstractmethod
    def stop(self) -> None:
        """Stop reading and release the device."""
