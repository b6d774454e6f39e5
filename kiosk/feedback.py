"""A patient's feedback (praise / suggestion / complaint): validation and the `feedback` event."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("praise", "suggestion", "complaint")
PHONE = re.compile(r"^1[3-9][0-9]{9}$")
PHONE_MAX_DIGITS = 11


class FeedbackError(ValueError):
    pass


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == PHONE_MAX_DIGITS else "****"


@dataclass
class FeedbackForm:
    category: str = ""
    department_id: str | None = None
    topics: list[str] = field(default_factory=list)
    phone: str = ""

    def toggle_topic(self, topic: str) -> None:
        if topic in self.topics:
            self.topics.remove(topic)
        else:
            self.topics.append(topic)

    def type_digit(self, d: str) -> None:
        if d.isdigit() and len(d) == 1 and len(self.phone) < PHONE_MAX_DIGITS:
            self.phone += d

    def delete_digit(self) -> None:
        self.phone = self.phone[:-1]

    def problem(self) -> str:
        """'' when the form can be sent, else the i18n key of what is wrong."""
        if self.category not in CATEGORIES:
            return "fb_category"
        if self.phone and not PHONE.fullmatch(self.phone):
            return "fb_phone_bad"
        return ""

    def event_data(self, tracking_no: str) -> dict[str, Any]:
        if self.problem():
            raise FeedbackError(self.problem())
        return {
            "category": self.category,
            "department_id": self.department_id or None,
            "topics": list(self.topics),
            "text": "",
            # Sent only because the patient typed it in to be called back (SPEC 4.1).
            "callback_phone": self.phone or None,
            "tracking_no": tracking_no,
        }
