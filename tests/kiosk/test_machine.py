"""The kiosk's state machine without a screen, a device or a thread: every fault of issue 14 is a
transition with its effects, and a stateful test drives random reads, taps, timeouts, language
and care switches and idle resets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from careterm.demo_data import demo_directory, demo_survey
from drivers.base import DeviceState
from drivers.card_reader.base import CardRead
from drivers.printer.document import Text
from kiosk.directory import Directory
from kiosk.machine import (
    COUNTDOWN_S,
    DONE_GRACE_S,
    Alert,
    KioskMachine,
    Print,
    Record,
    Save,
    Speak,
)
from kiosk.roster import Roster
from kiosk.survey import Survey
from kiosk.views import Screen
from terminal.config import parse_config
from terminal.privacy import lookup_token

from .conftest import TOKEN, patient_roster

CST = timezone(timedelta(hours=8))
SALT = b"machine-salt"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.wall = datetime(2026, 11, 23, 9, 0, tzinfo=CST)

    def mono(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.wall

    def advance(self, s: float) -> None:
        self.t += s
        self.wall += timedelta(seconds=s)


def make(clock: Clock | None = None, **kiosk) -> tuple[KioskMachine, Clock]:
    clock = clock or Clock()
    cfg = parse_config(
        {
            "device": {"id": "kiosk-01", "role": "kiosk", "site": "main", "data_dir": "/tmp/x"},
            "kiosk": {"location": "门诊楼1层大厅", "help_desk": "一楼服务台", **kiosk},
        }
    )
    m = KioskMachine(cfg, salt=SALT, mono=clock.mono, now=clock.now)
    doc = patient_roster(clock.wall)
    doc["appointments"][1]["lookup"] = [
        lookup_token(SALT, "phone_birth", "1381234567819560312"),
        lookup_token(SALT, "appointment", "88001"),
    ]
    m.set_rosters(Roster.parse(doc))
    m.set_directory(Directory.parse(demo_directory()))
    m.set_survey(Survey.parse(demo_survey()))
    m.device_state("printer", DeviceState.OK)
    m.device_state("card_reader", DeviceState.OK)
    return m, clock


def card(token: str = TOKEN, **kw) -> CardRead:
    return CardRead("id_card", token, "1101**********7774", "张*", **kw)


def kinds(effects) -> list[str]:
    return [type(e).__name__ for e in effects]


def test_card_gives_the_list_with_focus_on_the_open_one_then_checkin_effects_in_order():
    m, _ = make()
    eff = m.card(card())
    v = m.view()
    assert v.screen == Screen.APPOINTMENTS and v.data.focus == 1
    assert [i.state for i in v.data.items] == ["too_late", "checkin", "too_early"]
    assert Speak("list", "zh") in eff
    eff = m.choose(v.data.items[1].id)
    assert kinds(eff) == ["Record", "Print", "Save", "Speak"]  # durable before the ticket
    assert eff[0].data["ticket"] == "printed" and eff[0].data["token"] == TOKEN
    assert eff[2] == Save(
        "checkins.json", {"date": "2026-11-23", "ids": {v.data.items[1].id.upper(): "B023"}}
    )
    assert m.view().screen == Screen.DONE and m.view().data.where == "门诊3楼 305诊室"
    # the print fails after the event said "printed": an alert corrects it, ticket on screen
    fix = m.print_result("checkin", False, "cutter jammed")
    assert isinstance(fix[0], Alert) and fix[0].details == {
        "appointment": v.data.items[1].id,
        "ticket": "failed",
    }
    assert m.view().data.ticket == "failed"


@pytest.mark.parametrize(
    ("read", "problem"),
    [
        (CardRead("unknown", None, "", valid=False, problem="unrecognised"), "unrecognised"),
        (CardRead("unknown", None, "", valid=False, problem="check_digit"), "check_digit"),
        (CardRead("id_card", None, "", valid=False, problem="incomplete"), "incomplete"),
        (CardRead("id_card", TOKEN, "1101**", valid=False), "expired"),
        (CardRead("medical_card", "0" * 32, "1234****5678"), "no_appointment"),
        (
            CardRead("appointment_qr", None, "A202****0042", appointment="A20261122-0001"),
            "qr_other_day",
        ),
        (CardRead("appointment_qr", None, "X", appointment="NOPE-1"), "no_appointment"),
    ],
)
def test_every_failed_read_says_what_went_wrong_and_offers_typing(read, problem):
    m, _ = make()
    m.go("guide")
    eff = m.card(read)
    v = m.view()
    assert v.screen == Screen.PROBLEM and v.data.problem == problem
    assert v.data.lookup == ("appointment", "phone_birth")
    assert Speak(f"problem_{problem}", "zh") in eff


def test_a_used_qr_says_so_with_the_queue_number_and_offers_a_reprint():
    m, _ = make()
    m.card(card())
    appt = m.view().data.items[1].id
    m.choose(appt)
    m.go("home")
    m.card(CardRead("appointment_qr", None, "A", appointment=appt))
    v = m.view()
    assert v.data.problem == "qr_used" and v.data.queue_no == "B023"
    eff = m.choose(appt)
    assert kinds(eff)[:2] == ["Record", "Print"] and eff[0].data["repeat"] is True


def test_no_roster_for_today_and_a_qr_for_the_roster_kept_aside():
    clock = Clock()
    m, _ = make(clock)
    doc = patient_roster(clock.wall + timedelta(days=1), token="e" * 32)
    doc["appointments"][0]["id"] = "HIS-77"  # no date in the id: only the roster aside knows
    tomorrow = Roster.parse(doc)
    m.set_rosters(m.roster, (tomorrow,))  # terminal.documents keeps it aside
    m.card(CardRead("appointment_qr", None, "X", appointment="his-77"))
    assert m.view().data.problem == "qr_other_day"
    m.card(card("e" * 32))
    assert m.view().data.problem == "no_appointment"  # never used for check-in
    clock.advance(24 * 3600)  # midnight, before the service hands over the new day's roster
    assert m.today_roster() is None and "status_roster" in m.view().status
    m.set_rosters(tomorrow)
    m.card(card("e" * 32))
    assert m.view().screen == Screen.APPOINTMENTS
    fresh, _ = make()
    fresh.roster = None
    fresh.card(card())
    assert fresh.view().data.problem == "no_roster" and "status_roster" in fresh.view().status


def test_a_qr_for_another_day_says_so_before_todays_roster_has_come():
    clock = Clock()
    m, _ = make(clock)
    tomorrow = Roster.parse(patient_roster(clock.wall + timedelta(days=1)))
    m.set_rosters(None, (tomorrow,))
    m.card(
        CardRead(
            "appointment_qr",
            None,
            "X",
            appointment=f"A{clock.wall + timedelta(days=1):%Y%m%d}-0042",
        )
    )
    assert m.view().data.problem == "qr_other_day"
    m.card(CardRead("appointment_qr", None, "X", appointment="A20261123-0001"))  # today's
    assert m.view().data.problem == "no_roster"
    m.card(card())
    assert m.view().data.problem == "no_roster"


def test_a_checkin_without_any_token_says_null_not_an_empty_token():
    """An online booking has no card token: its QR check-in carries `token: null`, which the
    site's CheckinData accepts (an empty string is refused there and left out of reports)."""
    from terminal.payloads import CheckinData

    clock = Clock()
    m, _ = make(clock)
    doc = patient_roster(clock.wall)
    for a in doc["appointments"]:
        del a["token"]
    m.set_rosters(Roster.parse(doc))
    appt = doc["appointments"][1]["id"]
    m.card(CardRead("appointment_qr", None, "X", appointment=appt))
    rec = m.choose(appt)[0]
    assert isinstance(rec, Record) and rec.data["token"] is None
    CheckinData.model_validate(rec.data)


def test_reader_fault_never_sends_patients_to_the_qr_scanner():
    m, _ = make()
    eff = m.device_state("card_reader", DeviceState.ERROR, "no answer")
    assert eff[0] == Alert(
        "card_reader",
        "warning",
        "card reader error: no answer",
        {"state": "error", "detail": "no answer"},
    )
    eff = m.go("checkin")
    v = m.view()
    assert not v.data.reader_ok and v.data.lookup and Speak("reader_fault", "zh") in eff
    from kiosk.i18n import TEXTS

    for key in ("status_reader", "checkin_reader_fault", "pr_reader_fault_text"):
        for text in TEXTS[key]:
            assert "请扫" not in text and "scan your" not in text.lower()  # never "scan your QR"


def test_lookup_by_phone_and_birth_date_and_by_appointment_number():
    m, _ = make()
    m.go("checkin")
    m.go("lookup")
    assert m.view().data.method == "" and m.view().data.methods == ("appointment", "phone_birth")
    m.lookup_method("phone_birth")
    for d in "1381234567":
        m.lookup_key(d)
    m.lookup_key("ok")
    assert m.view().data.error == "lk_phone_bad"
    m.lookup_key("8")
    assert m.view().data.field == "birth"  # 11 digits: on to the birth date
    for d in "19561312":
        m.lookup_key(d)
    m.lookup_key("ok")
    assert m.view().data.error == "lk_birth_bad"  # month 13
    for _ in range(4):
        m.lookup_key("delete")
    for d in "0312":
        m.lookup_key(d)
    eff = m.lookup_key("ok")
    v = m.view()
    assert v.screen == Screen.APPOINTMENTS and [i.queue_no for i in v.data.items] == ["B023"]
    assert Speak("list", "zh") in eff
    rec = m.choose(v.data.items[0].id)[0]
    assert rec.data["card_kind"] == "phone_birth"
    assert rec.data["token"] == lookup_token(SALT, "phone_birth", "1381234567819560312")
    # the appointment number: a HIS number's token, or the digits of the roster id
    for number in ("88001", v.data.items[0].id):
        m.go("home")
        m.go("lookup")
        m.lookup_method("appointment")
        for ch in number:
            if ch.isdigit():
                m.lookup_key(ch)
        m.lookup_key("ok")
        assert m.view().screen == Screen.APPOINTMENTS
    m.go("lookup")
    m.lookup_method("appointment")
    for d in "12345":
        m.lookup_key(d)
    m.lookup_key("ok")
    assert m.view().data.problem == "not_found"
    m.back()
    assert m.view().screen == Screen.CHECKIN


def test_an_elderly_id_card_turns_care_mode_on_until_the_idle_reset():
    m, clock = make(idle_timeout_s=60)
    m.card(card(elderly=True))
    v = m.view()
    assert v.care and v.screen == Screen.APPOINTMENTS
    clock.advance(60 + COUNTDOWN_S)  # care mode: no time pressure
    m.tick()
    assert m.view().screen == Screen.APPOINTMENTS and m.view().countdown is None
    m.go("home")
    assert m.view().care  # still the same patient
    m.go("guide")
    clock.advance(3 * 60 + 3 * COUNTDOWN_S + 1)
    m.tick()
    v = m.view()
    assert v.screen == Screen.HOME and not v.care


def test_care_switch_on_any_screen_speaks_and_stretches_the_done_screen():
    m, clock = make()
    m.card(card())
    m.choose(m.view().data.items[1].id)
    before = m.view().back_in
    eff = m.set_care(True)
    assert Speak("care_on", "zh") in eff and m.view().back_in > before * 2


def test_call_staff_alerts_once_a_minute_with_the_location():
    m, clock = make()
    m.go("feedback")
    eff = m.help()
    assert eff[0] == Alert(
        "help",
        "warning",
        "a patient asks for help at 门诊楼1层大厅",
        {"location": "门诊楼1层大厅", "screen": "feedback"},
    )
    assert m.view().screen == Screen.HELP
    clock.advance(5)
    eff = m.help()
    assert not [e for e in eff if isinstance(e, Alert)] and m.view().data.repeated
    clock.advance(61)
    assert [e for e in m.help() if isinstance(e, Alert)]


def test_double_enter_does_not_dismiss_the_done_screen_at_once():
    m, clock = make()
    m.card(card())
    m.choose(m.view().data.items[1].id)
    clock.advance(0.25)
    m.go("home")  # the second Enter, 250 ms later
    assert m.view().screen == Screen.DONE
    clock.advance(DONE_GRACE_S)
    m.go("home")
    assert m.view().screen == Screen.HOME


def test_language_switch_resets_the_guide_letter_and_back_keeps_english():
    m, _ = make()
    m.go("guide")
    m.guide(letter="X")
    assert m.view().data.letter == "X"
    m.set_language("en")
    assert m.view().data.letter == "" and m.view().lang == "en"
    m.guide(dept="cardio")
    m.back()
    assert m.view().data.dept == ""
    m.back()
    assert m.view().screen == Screen.HOME and m.view().lang == "en"


def test_survey_starts_unanswered_with_each_questions_own_labels():
    m, _ = make()
    m.set_survey(
        Survey.parse(
            {
                "v": 1,
                "id": "s",
                "questions": [
                    {"id": "q1", "text": "推荐?", "scale": 3, "labels": ["不会", "不一定", "会"]},
                    {"id": "q2", "text": "满意?", "scale": 5},
                ],
            }
        )
    )
    m.go("survey")
    v = m.view().data
    assert v.answer is None and v.labels == ("不会", "不一定", "会") and v.labels_en == v.labels
    assert m.survey_answer(5) == [] and m.view().data.qid == "q1"  # outside the 3-point scale
    m.survey_answer(3)
    assert m.view().data.labels[0] == "很不满意" and m.view().data.labels_en[-1] == "Very satisfied"
    eff = m.survey_answer(None)
    assert eff == [Record("survey", {"survey": "s", "answers": {"q1": 3}})]


def test_empty_feedback_gets_no_number_and_a_reply_is_promised_only_with_a_phone():
    m, _ = make()
    m.go("feedback")
    m.feedback("category", "praise")
    m.feedback("department", None)
    m.feedback("next")
    assert m.feedback("submit") == [] and m.view().data.error == "fb_empty"
    m.back()
    m.feedback("topic", "服务热情")
    m.feedback("next")
    eff = m.feedback("submit")
    assert kinds(eff) == ["Save", "Record", "Print"] and eff[0].must
    v = m.view()
    assert v.screen == Screen.FEEDBACK_DONE and v.data.phone == ""
    assert v.data.tracking_no == "F-20261123-kiosk-01-0001"
    slip = " ".join(b.text for b in eff[2].doc.blocks if isinstance(b, Text))
    assert "工作日" not in slip and "一楼服务台" in slip


def test_paper_near_end_and_a_silent_printer_warn_once():
    m, _ = make()
    assert m.printer_status(True)[0].details == {"state": "paper_near_end"}
    assert m.printer_status(True) == []
    eff = m.printer_status(False, silent=True)
    assert eff[0].severity == "warning" and "status_printer_unknown" in m.view().status
    assert m.printer_status(False, silent=True) == []


def test_printer_fault_known_before_checkin_shows_the_ticket_and_prints_nothing():
    m, _ = make()
    m.device_state("printer", DeviceState.ERROR, "cannot open: /nope")
    m.card(card())
    eff = m.choose(m.view().data.items[1].id)
    assert not [e for e in eff if isinstance(e, Print)] and eff[0].data["ticket"] == "failed"
    assert m.view().data.ticket == "failed" and m.view().back_in >= 29


def test_a_failed_outbox_write_promises_nothing():
    m, _ = make()
    m.card(card())
    m.choose(m.view().data.items[1].id)
    m.storage_failed()
    assert m.view().screen == Screen.NOTICE and m.view().data.text == "failed_text"


# -- stateful: any interleaving keeps the kiosk consistent ---------------------------------------


class KioskSession(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m, self.clock = make()
        self.checkins: list[str] = []

    def _apply(self, effects) -> None:
        for e in effects:
            if isinstance(e, Record) and e.etype == "checkin" and not e.data["repeat"]:
                self.checkins.append(e.data["appointment"])
            assert not isinstance(e, Alert) or e.kind in ("help", "printer", "card_reader")

    @rule(
        read=st.sampled_from(
            [
                card(),
                card(elderly=True),
                card("b" * 32),
                CardRead("unknown", None, "", valid=False, problem="unrecognised"),
                CardRead("unknown", None, "", valid=False, problem="check_digit"),
                CardRead("staff_card", "c" * 32, "S1"),
            ]
        )
    )
    def read(self, read):
        self._apply(self.m.card(read))
        assert self.m.view().screen in (Screen.APPOINTMENTS, Screen.PROBLEM, Screen.PIN)

    @rule(i=st.integers(0, 3))
    def choose(self, i):
        v = self.m.view()
        if v.screen == Screen.APPOINTMENTS and i < len(v.data.items):
            self._apply(self.m.choose(v.data.items[i].id))

    @rule(where=st.sampled_from(["home", "checkin", "lookup", "guide", "feedback", "survey"]))
    def go(self, where):
        self._apply(self.m.go(where))

    @rule()
    def back(self):
        self._apply(self.m.back())

    @rule(lang=st.sampled_from(["zh", "en"]))
    def language(self, lang):
        self._apply(self.m.set_language(lang))
        assert self.m.view().lang == lang

    @rule()
    def care(self):
        was = self.m.care
        self._apply(self.m.set_care())
        assert self.m.care is not was

    @rule()
    def call_staff(self):
        self._apply(self.m.help())

    @rule(key=st.sampled_from(list("0123456789") + ["delete", "ok"]))
    def key(self, key):
        self._apply(self.m.lookup_key(key))

    @rule(score=st.none() | st.integers(0, 6))
    def survey(self, score):
        self._apply(self.m.survey_answer(score))

    @rule(s=st.sampled_from([0.1, 0.3, 1.0, 5.0, 30.0, 200.0]))
    def wait(self, s):
        self.clock.advance(s)
        self._apply(self.m.tick())

    @rule()
    def idle_reset(self):
        self.clock.advance(10_000)
        self._apply(self.m.tick())
        v = self.m.view()
        assert v.screen == Screen.HOME and not v.care and v.lang == "zh"
        assert self.m.patient.token == "" and self.m.patient.decisions == []

    @invariant()
    def consistent(self):
        v = self.m.view()
        assert len(self.checkins) == len(set(self.checkins))  # never checked in twice
        assert isinstance(v.screen, Screen)
        if v.screen == Screen.APPOINTMENTS and v.data.focus is not None:
            assert v.data.items[v.data.focus].can_choose
        if v.screen == Screen.HOME and not v.care and v.lang == "zh":
            assert v.countdown is None
        json.dumps(v.status)


TestKioskSession = KioskSession.TestCase
TestKioskSession.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
