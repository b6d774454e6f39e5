"""What each kiosk screen shows: one frozen, typed view per screen, made by `KioskMachine`.

The Kivy screens render these and nothing else; tests read them without a screen."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from kiosk.directory import Directory


class Screen(enum.StrEnum):
    HOME = "home"  # attract screen: present a card, four big buttons
    CHECKIN = "checkin"  # "place your card / scan your QR", or type instead
    LOOKUP = "lookup"  # manual lookup: appointment number, or phone + birth date
    APPOINTMENTS = "appointments"
    REFUSED = "refused"  # too early / too late for the chosen appointment
    PROBLEM = "problem"  # a read or lookup that found nothing usable: what went wrong, what to do
    DONE = "done"  # checked in: queue number, where to go (the ticket on screen if not printed)
    GUIDE = "guide"
    FEEDBACK = "feedback"
    FEEDBACK_DONE = "feedback_done"
    SURVEY = "survey"
    NOTICE = "notice"  # short messages: survey done / none, cannot save now
    HELP = "help"  # staff called
    PIN = "pin"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class SiteTexts:
    """The hospital's own words from `[kiosk]` (SPEC 9.6); empty means the neutral default."""

    hospital_name: str = ""
    hospital_name_en: str = ""
    logo: str = ""
    help_desk: str = ""
    help_desk_en: str = ""
    booking_hint: str = ""
    booking_hint_en: str = ""
    feedback_reply_days: int = 3
    location: str = ""


@dataclass(frozen=True)
class HomeView:
    pass


@dataclass(frozen=True)
class CheckinView:
    reader_ok: bool = True
    lookup: tuple[str, ...] = ()
    """Manual lookups offered (`[kiosk].lookup`)."""


@dataclass(frozen=True)
class LookupView:
    method: str = ""
    """"" (choose), "appointment" or "phone_birth"."""
    field: str = ""
    """The field being typed: "number", "phone" or "birth"."""
    number: str = ""
    phone: str = ""
    birth: str = ""
    error: str = ""
    """i18n key of what is wrong with what was typed."""
    methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class Item:
    id: str
    queue_no: str
    department: str
    department_en: str
    doctor: str
    room: str
    where: str
    time: str
    state: str
    """checkin | reprint | too_early | too_late"""
    hhmm: str = ""

    @property
    def can_choose(self) -> bool:
        return self.state in ("checkin", "reprint")


@dataclass(frozen=True)
class AppointmentsView:
    patient: str
    items: tuple[Item, ...]
    focus: int | None
    """Index of the first appointment that can be checked in now (new before reprint)."""


@dataclass(frozen=True)
class RefusedView:
    reason: str
    hhmm: str
    slot: str


@dataclass(frozen=True)
class ProblemView:
    problem: str
    """unrecognised | check_digit | expired | no_appointment | no_roster | qr_other_day |
    qr_used | reader_fault | not_found (typed lookup) | fault (an input that failed)"""
    queue_no: str = ""
    appointment: str = ""
    lookup: tuple[str, ...] = ()
    """Manual lookups the screen offers instead."""


@dataclass(frozen=True)
class DoneView:
    queue_no: str
    department: str
    department_en: str
    doctor: str
    time: str
    where: str
    location: str
    ticket: str
    """printed | failed | none"""
    qr: str
    appointment: str
    repeat: bool


@dataclass(frozen=True)
class GuideView:
    directory: Directory
    letter: str = ""
    dept: str = ""
    """A department id: its page is open."""


@dataclass(frozen=True)
class FeedbackView:
    directory: Directory
    step: str = "category"
    """category | department | topics | phone"""
    category: str = ""
    department_id: str | None = None
    topics: tuple[str, ...] = ()
    phone: str = ""
    error: str = ""


@dataclass(frozen=True)
class FeedbackDoneView:
    tracking_no: str
    printed: bool
    phone: str
    """Masked callback number; "" when none was given (then no reply promise is made)."""


@dataclass(frozen=True)
class SurveyView:
    qid: str
    text: str
    text_en: str
    labels: tuple[str, ...]
    labels_en: tuple[str, ...]
    i: int
    n: int
    answer: int | None = None

    @property
    def scale(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class NoticeView:
    title: str
    text: str = ""


@dataclass(frozen=True)
class HelpView:
    location: str
    repeated: bool = False
    """The patient asked again within a minute: no second alert, same promise."""


@dataclass(frozen=True)
class PinView:
    disabled: bool = False
    error: str = ""
    locked: bool = False


@dataclass(frozen=True)
class MaintenanceView:
    message: str = ""
    rows: tuple[tuple[str, str], ...] = ()
    """Filled in by the service (outbox, broker, devices) when the view is published."""


ScreenData = (
    HomeView
    | CheckinView
    | LookupView
    | AppointmentsView
    | RefusedView
    | ProblemView
    | DoneView
    | GuideView
    | FeedbackView
    | FeedbackDoneView
    | SurveyView
    | NoticeView
    | HelpView
    | PinView
    | MaintenanceView
)


@dataclass(frozen=True)
class View:
    """What the screen shows. `content` changes when the screen must be rebuilt; `countdown`
    (idle overlay) and `back_in` (seconds to auto-home) change every second without a rebuild."""

    screen: Screen
    lang: str
    data: Any = field(default_factory=HomeView)
    care: bool = False
    """Care mode (关怀模式): larger text and targets, fewer items, no time pressure, voice."""
    status: tuple[str, ...] = ()
    countdown: int | None = None
    back_in: int | None = None
    content: int = 0
    site: SiteTexts = field(default_factory=SiteTexts)
