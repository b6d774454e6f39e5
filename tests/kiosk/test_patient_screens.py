"""What a patient sees in the real window (Xvfb), where the fit test's walk does not look: the
appointment to check in scrolled into sight, a problem's message under a status line of several
faults on a small screen, the home buttons' height, English words whole on fitted buttons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.base import DeviceState
from drivers.card_reader.base import CardRead

from .test_fit import overflows, small_targets
from .tour import TOKEN, make_service

pytestmark = pytest.mark.display

CARD = CardRead("id_card", TOKEN, "1101**********7774", "张*")


def every_fault(svc: Any) -> None:
    """Printer out of paper, reader unplugged, network down, no roster for today: the status
    line says all four (three to five lines on a small screen)."""
    m = svc.machine
    svc.call(
        lambda: (
            m.device_state("printer", DeviceState.ERROR, "paper out"),
            m.device_state("card_reader", DeviceState.ABSENT, "unplugged"),
            setattr(m, "network_up", False),
            m.set_rosters(None),
        )
    )


@pytest.fixture
def kiosk_ui(window_ui: Any):
    """The module's window with this test's kiosk alone in it: a kiosk left from an earlier
    test would be drawn under it at every frame (seconds a frame in software GL), which no
    kiosk does."""
    made: list[Any] = []

    def make(service: Any, size: tuple[int, int]) -> Any:
        ui = window_ui(service, size)
        made.append(ui)
        return ui

    yield make
    for ui in made:
        ui.close()


def start(
    tmp_path: Path,
    kiosk_ui: Any,
    size: tuple[int, int],
    lang: str,
    care: bool,
    long_names: bool = True,
):
    svc = make_service(tmp_path / "data", long_names=long_names)
    ui = kiosk_ui(svc, size)
    svc.set_language(lang)
    svc.set_care(care)
    ui.pump_until(lambda: ui.root.view.care is care and ui.root.view.lang == lang, what="mode")
    return svc, ui


def rect(w: Any) -> tuple[float, float, float, float]:
    x, y = w.to_window(w.x, w.y)
    return x, y, x + w.width, y + w.height


@pytest.mark.parametrize(
    "size,care,long_names",
    [((800, 480), False, True), ((1080, 1920), True, True), ((1080, 1920), False, False)],
)
def test_the_appointment_to_check_in_is_in_sight_after_a_card_read(
    size, care, long_names, tmp_path: Path, kiosk_ui
):
    """The list starts with a "too late" appointment: the first that can be checked in has
    the focus (SPEC 5) and must be on the screen, not below the list's edge (long names); a
    list that fits is not pushed down by that scrolling (short names)."""
    from kivy.uix.scrollview import ScrollView

    svc, ui = start(tmp_path, kiosk_ui, size, "zh", care, long_names)
    try:
        svc.card_read(CARD)
        ui.wait_screen("appointments")
        ui.pump_for(0.3)
        focused = ui.root.focused
        assert focused.appointment_state == "checkin"
        assert ui.root.built.focus[0] is not focused  # an appointment above it
        sv = focused.parent
        while not isinstance(sv, ScrollView):
            sv = sv.parent
        b, v = rect(focused), rect(sv)
        assert b[1] >= v[1] - 1 and b[3] <= v[3] + 1, f"focused {b} outside the list's view {v}"
        if not long_names:  # a list that fits starts at the top
            assert sv.children[0].height <= sv.height
            first = rect(ui.root.built.focus[0])
            assert first[3] >= v[3] - 2 * ui.root.sizes.gap, f"first {first}, view {v}"
    finally:
        svc.stop()


def test_a_problem_is_legible_under_every_fault_on_a_small_screen_in_care_mode(
    tmp_path: Path, kiosk_ui
):
    """800x480, care mode, four faults in the status line: the problem screen's message (no
    roster: go to the help desk) keeps room for lines of text; an empty countdown line took
    100 px and left it a 20 px sliver."""
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    svc, ui = start(tmp_path, kiosk_ui, (800, 480), "zh", True)
    try:
        every_fault(svc)
        svc.card_read(CARD)
        ui.wait_screen("problem")
        ui.pump_until(lambda: ui.root.view.data.problem == "no_roster", what="no roster")
        ui.pump_for(0.3)
        [panel] = [w for w in ui.root.built.widget.walk() if type(w).__name__ == "Panel"]
        sv = panel.parent
        while not isinstance(sv, ScrollView):
            sv = sv.parent
        assert sv.height >= 2 * panel.font_size, f"message in {sv.height:.0f} px"
        empty = [w for w in ui.root.built.widget.walk() if isinstance(w, Label) and not w.text]
        assert empty and all(w.height == 0 for w in empty)
    finally:
        svc.stop()


@pytest.mark.parametrize(
    "size,lang,care,faults",
    [
        ((800, 480), "en", False, False),
        ((800, 480), "en", False, True),
        ((800, 480), "en", True, True),
        ((1080, 1920), "en", True, True),
    ],
)
def test_home_buttons_keep_a_button_height_and_the_prompt_its_place(
    size, lang, care, faults, tmp_path: Path, kiosk_ui
):
    """The four home buttons were 48 px tall at 800x480 in English (31 px under a status line of
    faults) and the prompt ran up under the status line; now every target is 60 px or more and
    nothing leaves the screen area."""
    svc, ui = start(tmp_path, kiosk_ui, size, lang, care)
    try:
        if faults:
            every_fault(svc)
            svc.go("home")
            ui.pump_until(lambda: len(ui.root.view.status) >= 3, what="status line")
        ui.wait_screen("home")
        ui.pump_for(0.3)
        assert not overflows(ui.root, size)
        assert not small_targets(ui.root)
    finally:
        svc.stop()


def broken_words(root: Any) -> list[str]:
    """Fitted buttons with an English word wider than the button's line (Kivy splits it)."""
    from kivy.core.text import Label as CoreLabel

    from kiosk.ui.widgets import WORD, FitButton

    out = []
    for w in root.walk():
        if not isinstance(w, FitButton) or not w.text:
            continue
        for word in WORD.findall(w.text):
            lbl = CoreLabel(text=word, font_size=w.font_size, bold=w.bold)
            lbl.refresh()
            if lbl.texture.size[0] > w.text_size[0] + 1:
                out.append(f"{word!r} {lbl.texture.size[0]} px on a {w.text_size[0]:.0f} px line")
    return out


def test_english_words_are_never_split_on_fitted_buttons_in_care_mode(tmp_path: Path, kiosk_ui):
    """1280x800, English, care mode: "Delete", "Submit", "Feedback", "Dissatisfied" read
    "Delet / e", "Sub / mit", ... before; a fitted button now shrinks its text until each word
    is whole on its line."""
    svc, ui = start(tmp_path, kiosk_ui, (1280, 800), "en", True)
    problems: list[str] = []
    try:
        ui.wait_screen("home")
        ui.pump_for(0.2)
        problems += [f"home: {p}" for p in broken_words(ui.root)]
        svc.go("survey")
        ui.wait_screen("survey")
        ui.pump_for(0.2)
        problems += [f"survey: {p}" for p in broken_words(ui.root)]
        svc.go("feedback")
        ui.wait_screen("feedback")
        svc.feedback("category", "praise")
        svc.feedback("department", None)
        svc.feedback("next")
        ui.pump_until(lambda: ui.root.view.data.step == "phone", what="phone keypad")
        ui.pump_for(0.2)
        problems += [f"feedback phone: {p}" for p in broken_words(ui.root)]
        assert not problems, "\n".join(problems)
    finally:
        svc.stop()


def low_contrast(root: Any) -> list[str]:
    """Texts of the screen area and the bar of switches under 4.5:1 against what they are drawn
    on (a button's colour, a panel's tint, the page's background)."""
    from kivy.uix.label import Label

    from kiosk.ui.widgets import BG, FocusButton, Panel, contrast

    out = []
    for top in (root.screen_area, root.care_button.parent):
        for w in top.walk():
            if not isinstance(w, Label) or not w.text.strip() or w.opacity == 0:
                continue
            if isinstance(w, FocusButton):
                bg = tuple(w.base_color)
            elif isinstance(w, Panel):
                bg = w._tint
            else:
                bg = BG
            c = contrast(tuple(w.color), bg)
            if c < 4.5:
                out.append(f"{w.text[:16]!r} {c:.2f}:1")
    return out


def test_every_text_on_every_screen_has_at_least_4_5_to_1_contrast(tmp_path: Path, kiosk_ui):
    """SPEC 9.6 (care mode: contrast at least 4.5:1). The green titles ("签到成功", "感谢您的反馈",
    "已通知工作人员") were 4.39:1 on the page."""
    from .tour import tour

    svc = make_service(tmp_path / "data")
    problems: set[str] = set()
    try:
        ui = kiosk_ui(svc, (1080, 1920))
        svc.set_care(True)
        ui.pump_until(lambda: ui.root.view.care, what="care mode")

        def visit(name: str) -> None:
            problems.update(f"{name}: {p}" for p in low_contrast(ui.root))

        tour(svc, ui, visit, "zh")
        assert not problems, "\n".join(sorted(problems))
    finally:
        svc.stop()


def test_back_on_the_call_staff_screen_brings_the_ticket_on_screen_back(tmp_path: Path, kiosk_ui):
    """Printer out of paper: the ticket is on the screen; "呼叫工作人员" then "返回" by touch shows
    the same ticket again (it went home, and the ticket was lost)."""
    svc, ui = start(tmp_path, kiosk_ui, (1080, 1920), "zh", False)
    try:
        svc.printer.set(DeviceState.ERROR, "paper out")
        svc.card_read(CARD)
        ui.wait_screen("appointments")
        ui.key("enter")
        ui.wait_screen("done")
        assert ui.root.view.data.ticket == "failed"
        queue_no = ui.root.view.data.queue_no
        ui.tap(ui.root.help_button)
        ui.wait_screen("help")
        ui.pump_for(1.1)
        ui.tap(ui.button("返回"))
        ui.wait_screen("done")
        assert ui.root.view.data.queue_no == queue_no and queue_no in ui.texts()
    finally:
        svc.stop()


def double_tap(ui: Any, widget: Any, gap: float = 0.2) -> None:
    """A patient's tap on the widget, then a second touch at the same place `gap` seconds
    later, as a hurried or trembling finger gives: it lands on whatever the first tap's page
    put there."""
    from kivy.tests.common import UnitTestTouch

    x, y = widget.to_window(*widget.center)
    ui.tap(widget)
    ui.pump_for(gap)
    t = UnitTestTouch(x, y)
    t.touch_down()
    ui.loop.idle()
    t.touch_up()
    ui.loop.idle()
    ui.pump_for(0.3)


def test_a_double_tap_does_not_answer_the_next_question_or_choose_on_the_next_page(
    tmp_path: Path, kiosk_ui
):
    """A double tap on a survey answer recorded the next question too (the second tap hit its
    answer at the same place); one on "查询" chose the appointment under it on the list."""
    svc, ui = start(tmp_path, kiosk_ui, (1080, 1920), "zh", False)
    m = svc.machine
    try:
        svc.go("survey")
        ui.wait_screen("survey")
        [four] = [b for b in ui.buttons() if getattr(b, "score", 0) == 4]
        double_tap(ui, four)
        assert ui.root.view.data.i == 2
        assert svc.call(lambda: dict(m._survey_run.answers)) == {"q1": 4}
        svc.go("lookup")
        ui.wait_screen("lookup")
        svc.lookup_method("phone_birth")
        for d in "1381234567819560312":
            svc.lookup_key(d)
        ui.pump_until(lambda: ui.root.view.data.birth == "19560312", what="birth date")
        double_tap(ui, ui.button("查询"))
        assert ui.screen == "appointments"
        assert not [e for e in svc.uplink.outbox.iter_all() if e.type == "checkin"]
    finally:
        svc.stop()


def test_the_feedback_tracking_number_stays_on_one_line_in_care_mode(tmp_path: Path, kiosk_ui):
    """The patient's reference for a complaint (on screen only when the slip did not print): in
    care mode at 1080x1920 it wrapped as "F-20261203-kiosk-01-00" / "03"."""
    from kivy.core.text import Label as CoreLabel

    svc, ui = start(tmp_path, kiosk_ui, (1080, 1920), "zh", True)
    try:
        svc.go("feedback")
        ui.wait_screen("feedback")
        svc.feedback("category", "complaint")
        svc.feedback("department", None)
        svc.feedback("topic", "等候时间长")
        svc.feedback("next")
        svc.feedback("submit")
        ui.wait_screen("feedback_done")
        ui.pump_for(0.3)
        number = ui.root.view.data.tracking_no
        [label] = [w for w in ui.root.built.widget.walk() if getattr(w, "text", "") == number]
        one_line = CoreLabel(text=number, font_size=label.font_size, bold=label.bold)
        one_line.refresh()
        assert one_line.texture.size[0] <= label.width + 1
        assert label.texture_size[1] <= one_line.texture.size[1] + 2  # one line
    finally:
        svc.stop()


def test_a_double_enter_on_find_does_not_check_in_but_a_card_reads_list_takes_enter(
    tmp_path: Path, kiosk_ui
):
    """Keypad users: Enter on "查询" then a second Enter at once (a bounce, a double press)
    checked in the appointment the list had focused, unseen; after a card read the list takes
    Enter at once (SPEC 5)."""
    svc, ui = start(tmp_path, kiosk_ui, (1080, 1920), "zh", False)
    try:
        svc.go("lookup")
        ui.wait_screen("lookup")
        svc.lookup_method("phone_birth")
        for d in "1381234567819560312":
            svc.lookup_key(d)
        ui.pump_until(lambda: ui.root.view.data.birth == "19560312", what="birth date")
        ui.pump_for(0.6)
        assert ui.root.focused.text == "查询"
        ui.key("enter")
        ui.pump_until(lambda: ui.screen == "appointments" and ui.root.built, what="list")
        ui.pump_for(0.15)
        ui.key("enter")
        ui.pump_for(0.5)
        assert ui.screen == "appointments"
        assert not [e for e in svc.uplink.outbox.iter_all() if e.type == "checkin"]
        svc.card_read(CARD)
        ui.pump_until(lambda: ui.root.view.data.items and ui.root.built, what="card's list")
        ui.pump_for(0.05)
        ui.key("enter")
        ui.wait_screen("done")
    finally:
        svc.stop()


def test_an_enter_after_moving_the_focus_is_taken_at_once(tmp_path: Path, kiosk_ui):
    """The Enter guard is for a double press only: a keypad user who moves the focus on the
    page an Enter opened and presses Enter again at once is obeyed."""
    svc, ui = start(tmp_path, kiosk_ui, (1080, 1920), "zh", False)
    try:
        svc.go("feedback")
        ui.wait_screen("feedback")
        svc.feedback("category", "complaint")
        ui.pump_until(lambda: ui.root.view.data.step == "department", what="departments")
        ui.pump_for(0.6)
        ui.key("enter")  # "不指定" has the focus
        ui.pump_until(lambda: ui.root.view.data.step == "topics" and ui.root.built, what="topics")
        ui.pump_for(0.05)
        ui.key("up", 4)
        ui.key("enter")
        ui.pump_until(lambda: ui.root.view.data.topics, what="topic chosen")
    finally:
        svc.stop()
