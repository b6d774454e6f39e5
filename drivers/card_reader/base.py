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
    elderly: bool = False
    """An ID card of a patient aged 65 or more (the kiosk turns care mode on); the birth date
    itself never leaves the reader code."""
    problem: str | None = None
    """A read that failed: "unrecognised" (no classify rule matched), "check_digit" (an ID
    number whose check character is wrong) or "incomplete" (an ID card read that failed midway:
    the card left the field, or the reply was damaged); `token` is None then. Lets the kiosk
    say so."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "appointment_qr":
            out["appointment"] = self.appointment
        else:
            out["token"] = self.token
        out.update(masked=self.masked, name_masked=self.name_masked, valid=self.valid)
        if self.problem:
            out["problem"] = self.problem
        return out


def unreadable(problem: str = "unrecognised") -> CardRead:
    """A read that gave nothing usable (no rule matched, a line rejected whole, a wrong check
    digit): no token, only the `problem` the kiosk tells the patient."""
    return CardRead(kind="unknown", token=None, masked="", valid=False, problem=problem)


ReadListener = Callable[[CardRead], None]


class CardReader(Watchable, ABC):
    """Calls the listener once per card presentation, from the driver's own thread."""

    @abstractmethod
    def start(self, on_read: ReadListener) -> None:
        """Open the reader (in the background) and deliver reads to `on_read`."""

    @abstractmethod
    def stop(self) -> None:
        """Stop reading and release the device."""
