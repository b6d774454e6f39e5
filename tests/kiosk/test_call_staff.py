""" "Call staff" (SPEC 9.6) covers the patient's screen with "someone is coming"; its Back button
returns to that screen as it was (a ticket shown on screen, a number half typed), and the idle
reset still forgets everything."""

from __future__ import annotations

from drivers.base import DeviceState
from kiosk.views import Screen

from .test_machine import card, make


def test_back_from_call_staff_returns_to_the_ticket_shown_on_screen():
    """The printer failed, so the ticket (queue number, QR) is on the screen for the patient to
    photograph; the patient calls staff, then taps Back: the ticket was gone (Back went home)."""
    m, clock = make()
    m.device_state("printer", DeviceState.ERROR, "paper out")
    m.card(card())
    m.choose(m.view().data.items[1].id)
    ticket = m.view().data
    assert m.view().screen == Screen.DONE and ticket.ticket == "failed"
    clock.advance(5)
    m.help()
    assert m.view().screen == Screen.HELP
    clock.advance(2)
    m.back()
    v = m.view()
    assert v.screen == Screen.DONE and v.data == ticket
    assert v.back_in >= 10  # time left to photograph it


def test_back_from_call_staff_keeps_what_the_patient_typed():
    m, clock = make()
    m.go("lookup")
    m.lookup_method("phone_birth")
    for d in "1381234":
        m.lookup_key(d)
    m.help()
    m.help()  # "staff are already on their way": still back to the lookup
    clock.advance(2)
    m.back()
    v = m.view()
    assert v.screen == Screen.LOOKUP and v.data.phone == "1381234"


def test_the_idle_reset_after_call_staff_forgets_the_covered_screen():
    m, clock = make()
    m.card(card())
    m.help()
    clock.advance(10_000)
    m.tick()
    assert m.view().screen == Screen.HOME
    m.back()
    assert m.view().screen == Screen.HOME and m.patient.decisions == []
    m.help()  # from home: Back goes home again
    clock.advance(2)
    m.back()
    assert m.view().screen == Screen.HOME
