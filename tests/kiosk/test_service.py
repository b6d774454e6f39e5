"""The kiosk's flows on the core thread, with a real outbox and a memory printer (no screen)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

from drivers.base import DeviceState
from drivers.card_reader.classify import Classifier, compile_rules
from drivers.card_reader.idcard import IdCardReader
from drivers.card_reader.sim import SamModule, SimCard
from drivers.printer.document import QR, Text
from kiosk import service as kiosk_service
from terminal.config import DEFAULT_CLASSIFY
from terminal.payloads import Telemetry
from terminal.privacy import card_token

from ..conftest import now_clear_of_midnight, wait_for
from .conftest import TOKEN, card, patient_roster


def test_card_lists_appointments_with_focus_on_the_open_one_and_checks_in(harness):
    svc = harness.start()
    seen_at_print: list[int] = []
    harness.printer.before_print = lambda: seen_at_print.append(len(harness.events("checkin")))
    svc.card_read(card())
    v = harness.wait_view("appointments")
    states = [it.state for it in v.data.items]
    assert states == ["too_late", "checkin", "too_early"]
    assert v.data.focus == 1 and v.data.patient == "张*三"
    assert v.data.items[2].hhmm  # come back at HH:MM
    svc.choose(v.data.items[1].id)
    done = harness.wait_view("done")
    assert done.data.queue_no == "B023" and done.data.ticket == "printed"
    assert done.data.where == "门诊3楼 305诊室"  # the floor said once
    [ev] = harness.events("checkin")
    assert ev["data"] == {
        "appointment": v.data.items[1].id,
        "department_id": "cardio",
        "queue_no": "B023",
        "card_kind": "id_card",
        "token": TOKEN,
        "timing": "early",
        "ticket": "printed",
        "repeat": False,
    }
    assert seen_at_print == [1]  # the event was durable before the ticket printed
    [doc] = harness.printer.docs
    assert any(isinstance(b, Text) and b.double and b.text == "B023" for b in doc.blocks)
    assert [b.data for b in doc.blocks if isinstance(b, QR)] == [f"CT1:{ev['data']['appointment']}"]
    wait_for(lambda: svc.view.back_in in (9, 10), 3, what="auto-home countdown")


def test_second_checkin_is_a_reprint_even_after_a_restart(harness):
    svc = harness.start()
    svc.card_read(card())
    v = harness.wait_view("appointments")
    appt = v.data.items[1].id
    svc.choose(appt)
    harness.wait_view("done")
    harness.stop()
    svc = harness.start()
    svc.card_read(card())
    v = harness.wait_view("appointments")
    assert v.data.items[1].state == "reprint"
    svc.choose(appt)
    assert harness.wait_view("done").data.repeat is True
    assert [e["data"]["repeat"] for e in harness.events("checkin")] == [False, True]
    assert [e["seq"] for e in harness.events()] == [1, 2]


def test_refused_appointments_explain_and_record_nothing(harness):
    svc = harness.start()
    svc.card_read(card())
    v = harness.wait_view("appointments")
    svc.choose(v.data.items[2].id)
    r = harness.wait_view("refused")
    assert r.data.reason == "too_early" and r.data.hhmm == v.data.items[2].hhmm
    svc.back()
    harness.wait_view("appointments")
    svc.choose(v.data.items[0].id)
    assert harness.wait_view("refused").data.reason == "too_late"
    assert harness.events() == []


def test_telemetry_says_null_for_a_printer_or_reader_the_kiosk_has_not(harness):
    harness.start(printer=None, card_reader=None)
    t = Telemetry.model_validate(harness.uplink.telemetry_payload())
    assert (t.printer, t.card_reader, t.buttons, t.screen) == (None, None, None, "home")


def test_printer_fault_never_blocks_checkin(harness):
    svc = harness.start()
    # known fault before the check-in: the event says "failed", the ticket is on screen
    harness.printer.set(DeviceState.ERROR, "paper out")
    wait_for(lambda: "status_printer" in svc.view.status, 3, what="printer status line")
    svc.card_read(card())
    v = harness.wait_view("appointments")
    svc.choose(v.data.items[1].id)
    done = harness.wait_view("done")
    assert done.data.ticket == "failed" and done.data.qr.startswith("CT1:")
    assert harness.events("checkin")[0]["data"]["ticket"] == "failed"
    alerts = [e["data"] for e in harness.events("alert")]
    assert alerts[0]["kind"] == "printer" and alerts[0]["state"] == "error"
    # a fault during the print: shown on screen, and an alert corrects the event's "printed"
    harness.printer.set(DeviceState.OK)
    harness.printer.fail_next = "cutter jammed"
    svc.card_read(card())
    harness.wait_view("appointments")
    svc.choose(v.data.items[1].id)
    done = wait_for(
        lambda: svc.view if svc.view.screen == "done" and svc.view.data.repeat else None,
        5,
        what="reprint done",
    )
    assert done.data.ticket == "failed"
    fix = [e["data"] for e in harness.events("alert") if e["data"].get("appointment")]
    assert fix and fix[0]["ticket"] == "failed"


def test_unknown_card_and_missing_roster_say_where_to_go(harness, kiosk_harness):
    svc = harness.start()
    svc.card_read(card("b" * 32))
    assert harness.wait_view("problem").data.problem == "no_appointment"
    other = kiosk_harness("other")
    yesterday = now_clear_of_midnight() - timedelta(days=1)
    other.write("roster.json", patient_roster(yesterday))
    svc2 = other.start()
    assert "status_roster" in svc2.view.status
    svc2.card_read(card())
    assert other.wait_view("problem").data.problem == "no_roster"


def test_a_read_the_kiosk_fails_to_handle_still_tells_the_patient_where_to_go(harness):
    """Data nobody foresaw or a bug in a flow: the patient sees (and hears) that this kiosk
    cannot help and where to go, not a screen that silently stays on home (SPEC 9.6)."""
    svc = harness.start()
    harness.wait_view("home")
    broken = svc.machine.card

    def card_with_a_bug(read):
        raise OverflowError("date value out of range")

    svc.machine.card = card_with_a_bug
    svc.card_read(card())
    v = harness.wait_view("problem")
    assert v.data.problem == "fault" and v.data.lookup == ()
    assert svc.call(lambda: svc.machine.patient.decisions) == []  # forgotten
    svc.machine.card = broken
    svc.card_read(card())  # the next patient is served as ever
    harness.wait_view("appointments")
    assert svc.is_alive()


def test_qr_read_finds_the_appointment_and_a_staff_card_asks_for_the_pin(harness):
    from drivers.card_reader.base import CardRead

    svc = harness.start()
    appt = json.loads((harness.data / "documents" / "roster.json").read_text())["appointments"][1][
        "id"
    ]
    svc.card_read(CardRead("appointment_qr", None, "A202****0042", appointment=appt.lower()))
    v = harness.wait_view("appointments")
    assert [it.id for it in v.data.items] == [appt]
    assert v.data.focus == 0
    svc.choose(appt)
    harness.wait_view("done")
    assert harness.events("checkin")[0]["data"]["card_kind"] == "appointment_qr"
    assert harness.events("checkin")[0]["data"]["token"] == TOKEN
    svc.card_read(CardRead("staff_card", "c" * 32, "S102****"))
    harness.wait_view("pin")
    svc.enter_pin("0000")
    wait_for(
        lambda: getattr(svc.view.data, "error", None) == "pin_bad", 3, what="wrong PIN message"
    )
    svc.enter_pin("1234")
    m = harness.wait_view("maintenance")
    rows = dict(m.data.rows)
    assert rows["mt_checkins"] == "1" and "waiting" in rows["mt_outbox"]
    svc.maintenance("test_printer")
    wait_for(
        lambda: svc.view.data.message.startswith("printed"),
        3,
        what="printer test result",
    )
    svc.maintenance("close")
    harness.wait_view("home")


def test_idle_countdown_then_home_and_the_patient_is_forgotten(harness, monkeypatch):
    from kiosk import machine

    svc = harness.start(idle_timeout_s=10)
    monkeypatch.setattr(svc.machine, "idle_timeout", lambda: 0.3)
    svc.set_language("en")
    svc.card_read(card())
    harness.wait_view("appointments")
    wait_for(lambda: svc.view.countdown is not None, 3, what="idle countdown")
    svc.activity()
    wait_for(lambda: svc.view.countdown is None, 2, what="countdown dismissed")
    monkeypatch.setattr(machine, "COUNTDOWN_S", 1)
    harness.wait_view("home", timeout=6)
    m = svc.machine
    assert m.patient.token == "" and m.patient.decisions == []
    assert svc.view.lang == "zh" and not svc.view.care


def test_feedback_and_survey_events_with_tracking_number_and_slip(harness):
    svc = harness.start()
    svc.go("feedback")
    harness.wait_view("feedback")
    svc.feedback("category", "complaint")
    svc.feedback("department", "cardio")
    svc.feedback("topic", "等候时间长")
    svc.feedback("next")
    for d in "13812345678":
        svc.feedback("digit", d)
    svc.feedback("submit")
    done = harness.wait_view("feedback_done")
    today = now_clear_of_midnight().strftime("%Y%m%d")
    assert done.data.tracking_no == f"F-{today}-kiosk-01-0001"
    assert done.data.printed and done.data.phone == "138****5678"
    [ev] = harness.events("feedback")
    assert ev["data"]["callback_phone"] == "13812345678"
    assert ev["data"]["department_id"] == "cardio"
    slip_texts = [b.text for b in harness.printer.docs[-1].blocks if isinstance(b, Text)]
    assert done.data.tracking_no in slip_texts
    svc.go("survey")
    q = harness.wait_view("survey")
    assert q.data.i == 1 and q.data.n == 3 and q.data.answer is None
    svc.survey_answer(5)
    wait_for(lambda: getattr(svc.view.data, "i", None) == 2, 3, what="question 2")
    svc.back()
    wait_for(
        lambda: (
            getattr(svc.view.data, "i", None) == 1 and getattr(svc.view.data, "answer", None) == 5
        ),
        3,
        what="back to question 1 with its answer",
    )
    svc.survey_answer(4, "q1")
    svc.survey_answer(4, "q1")  # a double tap: meant for q1, which is already answered
    svc.survey_answer(None, "q2")
    svc.survey_answer(2)
    harness.wait_view("notice")
    [sv] = harness.events("survey")
    assert sv["data"] == {"survey": "opd-demo", "answers": {"q1": 4, "q3": 2}}


def test_roster_over_mqtt_is_kept_and_bad_input_never_crashes(harness):
    svc = harness.start()
    now = now_clear_of_midnight()
    doc = patient_roster(now, token="d" * 32)
    svc.on_roster("careterm/main/roster", b"\xff\x00garbage")
    svc.on_directory("careterm/main/directory", b"[1,2]")
    svc.on_survey("careterm/main/survey", b"{}")
    svc.on_roster("careterm/main/roster", json.dumps(doc).encode())
    wait_for(lambda: svc.call(lambda: svc.machine.roster.source) == "mqtt", 3, what="roster")
    assert (
        json.loads((harness.data / "documents" / "roster.json").read_text())["appointments"][0][
            "token"
        ]
        == "d" * 32
    )
    svc.card_read(card("d" * 32))
    harness.wait_view("appointments")
    m = svc.machine
    assert svc.is_alive() and m.directory.departments and m.survey is not None
    alerts = [e["data"] for e in harness.events("alert")]
    assert sorted(a["document"] for a in alerts) == ["directory", "roster", "survey"]
    assert all(a["kind"] == "document" and a["severity"] == "warning" for a in alerts)
    svc.call(lambda: None)  # the core thread still answers


def test_card_reader_faults_raise_alerts_and_show_on_the_status_line(harness):
    from drivers.card_reader.base import CardReader

    class PluggableReader(CardReader):
        def start(self, on_read):
            self._set_state(DeviceState.OK)

        def stop(self) -> None:
            pass

    reader = PluggableReader("card_reader")
    svc = harness.start(card_reader=reader)
    reader._set_state(DeviceState.ABSENT, "/dev/ttyUSB1 unplugged")
    wait_for(lambda: "status_reader" in svc.view.status, 3, what="reader status line")
    reader._set_state(DeviceState.OK)
    wait_for(lambda: "status_reader" not in svc.view.status, 3, what="status line cleared")
    alerts = [e["data"] for e in harness.events("alert")]
    assert [(a["kind"], a["severity"], a["state"]) for a in alerts] == [
        ("card_reader", "warning", "absent"),
        ("card_reader", "info", "ok"),
    ]
    assert "unplugged" in alerts[0]["detail"]


def test_a_double_enter_or_double_submit_records_once(harness):
    svc = harness.start()
    svc.card_read(card())
    v = harness.wait_view("appointments")
    appt = v.data.items[1].id
    svc.choose(appt)
    svc.choose(appt)
    harness.wait_view("done")
    svc.call(lambda: None)  # both queued choices have run
    assert len(harness.events("checkin")) == 1 and len(harness.printer.docs) == 1
    svc.go("feedback")
    harness.wait_view("feedback")
    svc.feedback("category", "praise")
    svc.feedback("department", "cardio")
    svc.feedback("next")
    svc.feedback("submit")
    svc.feedback("submit")
    harness.wait_view("feedback_done")
    svc.call(lambda: None)
    assert len(harness.events("feedback")) == 1


def test_an_id_card_pulled_away_mid_read_asks_to_place_it_again(kiosk_harness, pty):
    """A SAM read cut short (the card left the field) reaches the patient through the driver
    interface (`CardRead.problem`), not as silence; placed again, the card checks in."""
    salt, number = b"kiosk-sam-salt", "11010519491231002X"
    h = kiosk_harness()
    h.write(
        "roster.json",
        patient_roster(now_clear_of_midnight(), token=card_token(salt, "id_card", number)),
    )
    module, stop = SamModule(), threading.Event()
    threading.Thread(target=module.serve, args=(pty.master, stop), daemon=True).start()
    # A reply cut short is noticed when its bytes stop, not at the (here huge) reply timeout.
    reader = IdCardReader(
        pty.path,
        115200,
        Classifier(compile_rules(DEFAULT_CLASSIFY), salt),
        poll_every=0.05,
        reply_timeout=30,
        reopen_every=0.1,
    )
    try:
        svc = h.start(card_reader=reader)
        wait_for(lambda: module.requests > 2, 5, what="reader polling")
        module.inject("pulled")
        module.present(SimCard(number=number))
        v = h.wait_view("problem")
        assert v.data.problem == "incomplete" and v.data.lookup  # typing a number is offered
        polls = module.requests
        wait_for(lambda: module.requests > polls + 2, 5)  # the reader saw the card leave
        module.present(SimCard(number=number))
        v = h.wait_view("appointments")
        assert [i.queue_no for i in v.data.items] == ["G015", "B023", "D007"]
        assert svc.is_alive() and h.events() == []  # a failed read records nothing
    finally:
        h.stop()
        stop.set()


def test_documents_are_read_after_the_first_frame_and_a_card_waits_for_them(harness, monkeypatch):
    """`careterm kiosk` reads its documents once the attract screen is drawn (a Pi's CPU goes to
    the first frame first): meanwhile no "no roster" warning, and a card read then is answered
    with the roster, never with "no roster"."""
    first_frame = threading.Event()
    svc = harness.start(documents_after=first_frame)
    assert svc.view.screen == "home" and "status_roster" not in svc.view.status
    svc.card_read(card())  # before the documents: it waits for them
    time.sleep(0.3)
    assert svc.view.screen == "home" and svc.machine.roster is None
    first_frame.set()
    v = harness.wait_view("appointments")
    assert [it.state for it in v.data.items] == ["too_late", "checkin", "too_early"]
    assert "status_roster" not in svc.view.status
    harness.stop()

    # No first frame ever (the window failed): the documents are read after a bound anyway.
    monkeypatch.setattr(kiosk_service, "DOCUMENTS_AFTER_MAX_S", 0.2)
    (harness.data / "documents" / "roster.json").unlink()
    svc = harness.start(documents_after=threading.Event())
    wait_for(lambda: "status_roster" in svc.view.status, 5, what="the roster's absence shown")
