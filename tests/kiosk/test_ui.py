"""The real kiosk window under Xvfb: a pty card reader, a file printer whose ESC/POS the test
decodes, keys and touches, and the check-in event at a real broker."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from careterm.demo_data import demo_directory, demo_survey, id_number
from drivers.base import DeviceState
from drivers.card_reader.base import CardRead
from drivers.printer.escpos_decode import decode
from kiosk.runner import Kiosk
from terminal.config import load_config
from terminal.privacy import card_token

from ..conftest import now_clear_of_midnight, wait_for
from .conftest import PIN_1234, patient_roster

pytestmark = pytest.mark.display

NUMBER = id_number("11010119900307777")  # valid ISO 7064 check digit: ...7774
SALT = b"kiosk-test-salt"
TOKEN_IN_UI = card_token(SALT, "id_card", NUMBER)


def kiosk_config(
    tmp_path: Path, config_writer, broker_url: str, reader: str, printer: Path, **extra: str
) -> Path:
    (tmp_path / "site.salt").write_bytes(SALT + b"\n")
    now = now_clear_of_midnight()
    roster = patient_roster(now, token=card_token(SALT, "id_card", NUMBER))
    (tmp_path / "roster.json").write_text(json.dumps(roster, ensure_ascii=False))
    data = tmp_path / "data"
    (data / "documents").mkdir(parents=True, exist_ok=True)
    (data / "documents" / "directory.json").write_text(
        json.dumps(demo_directory(), ensure_ascii=False)
    )
    (data / "documents" / "survey.json").write_text(json.dumps(demo_survey(), ensure_ascii=False))
    extra.setdefault("maintenance_pin_sha256", f'"{PIN_1234}"')
    kiosk_extra = "".join(f"{k} = {v}\n" for k, v in extra.items())
    return config_writer(
        "kiosk.toml",
        device_id="kiosk-01",
        role="kiosk",
        broker_url=broker_url,
        data_dir=data,
        extra=f"""
[privacy]
salt_file = "{tmp_path / "site.salt"}"

[card_reader]
driver = "serial"
device = "{reader}"

[printer]
driver = "file"
device = "{printer}"

[kiosk]
roster_file = "{tmp_path / "roster.json"}"
{kiosk_extra}""",
    )


@pytest.mark.broker
def test_card_on_pty_reader_then_enter_prints_ticket_and_reaches_the_broker(
    tmp_path, config_writer, broker, pty, subscriber_factory, window_ui
):
    ticket = tmp_path / "ticket.bin"
    cfg = load_config(kiosk_config(tmp_path, config_writer, broker.url, pty.path, ticket))
    sub = subscriber_factory(broker.port, ["careterm/main/kiosk-01/#"])
    kiosk = Kiosk(cfg)
    kiosk.start()
    try:
        ui = window_ui(kiosk.service)
        wait_for(lambda: kiosk.card_reader.state == DeviceState.OK, 5, what="reader open")
        wait_for(lambda: kiosk.uplink.link.connected.is_set(), 10, what="broker connection")
        pty.write(NUMBER.encode() + b"\r\n")
        ui.wait_screen("appointments")
        shown = ui.texts()
        assert "B023" in shown and "张*三" in shown
        assert NUMBER not in shown and NUMBER[:10] not in shown  # never the raw ID number
        focused = ui.root.focused
        assert focused.appointment_state == "checkin" and "B023" in focused.text
        assert focused.focused  # the amber focus frame is drawn
        ui.key("enter")
        ui.wait_screen("done")
        ui.key("enter")  # a double Enter: the second lands on "home" of the done screen
        ui.pump_for(0.3)
        assert ui.screen == "done"
        assert "B023" in ui.texts() and "门诊3楼 305诊室" in ui.texts()
        assert "门诊楼3层 门诊3楼" not in ui.texts()  # the floor said once
        t = decode(wait_for(lambda: ticket.exists() and ticket.read_bytes(), 5, what="ticket"))
        assert t.initialized and t.cut
        big = [ln for ln in t.lines if ln.double]
        assert [ln.text.strip() for ln in big] == ["B023"]
        joined = "\n".join(t.texts)
        for part in ("心内科", "李明", "门诊3楼 305诊室", "张*三"):
            assert part in joined
        assert any(ln.chinese for ln in t.lines if "心内科" in ln.text)  # FS & was on
        appt = ui.root.view.data.appointment
        assert t.qr == [f"CT1:{appt}"]
        ev = wait_for(lambda: sub.events("checkin"), 10, what="checkin at the broker")[0]
        assert ev["data"]["appointment"] == appt and ev["data"]["ticket"] == "printed"
        assert ev["data"]["token"] == card_token(SALT, "id_card", NUMBER)
        assert NUMBER not in json.dumps(sub.payloads(), ensure_ascii=False)
    finally:
        kiosk.stop()


@pytest.fixture
def home_kiosk(tmp_path, config_writer, window_ui):
    """A kiosk without drivers or broker, its window on the home screen: (kiosk, ui)."""
    cfg = load_config(
        kiosk_config(tmp_path, config_writer, "mqtt://127.0.0.1:1", "/dev/null", tmp_path / "t.bin")
    )
    kiosk = Kiosk(cfg, open_drivers=False)
    kiosk.start()
    try:
        ui = window_ui(kiosk.service)
        ui.wait_screen("home")
        yield kiosk, ui
    finally:
        kiosk.stop()


def test_a_screen_change_is_drawn_in_one_frame_and_then_the_window_rests(home_kiosk, monkeypatch):
    """On a Pi-class CPU every frame counts (llvmpipe here, the GPU's driver on a Pi): a new
    screen is one frame with nothing of the last screen in it, and nothing is drawn after it
    while nothing changes (Kivy's scroll bar fade and ScreenManager's transition drew ~30 more).
    The header's clock is stopped at one minute: its turn is a frame of its own, which came
    between a change and its frame, or after it, in one run of ~20."""
    import time

    real = time.strftime
    monkeypatch.setattr(time, "strftime", lambda f, *a: "09:41" if f == "%H:%M" else real(f, *a))
    kiosk, ui = home_kiosk
    ui.pump_for(1.2)  # past anything the first screen set off
    frames: list[tuple[str | None, int, str]] = []

    def flipped(*_: object) -> None:
        frames.append((ui.screen, len(ui.root.screen_area.children), ui.texts()))

    home_text = "请刷身份证/就诊卡或扫描预约二维码"
    read = CardRead("id_card", TOKEN_IN_UI, "1101**", "张*")
    ui.window.bind(on_flip=flipped)
    try:
        for change, screen, mark, gone in (
            (lambda: kiosk.service.card_read(read), "appointments", "B023", home_text),
            (lambda: kiosk.service.go("home"), "home", home_text, "B023"),
            (lambda: kiosk.service.go("guide"), "guide", "心内科", home_text),
        ):
            frames.clear()
            change()
            ui.pump_until(lambda s=screen: frames and frames[-1][0] == s, what=screen)
            ui.pump_for(1.5)  # Kivy's bar fade started 0.5 s after a layout, for 0.5 s
            first, children, texts = frames[0]
            assert first == screen and children == 1
            assert mark in texts and gone not in texts, f"{screen}: the last screen is drawn"
            assert len(frames) == 1, f"{screen}: {len(frames)} frames: {[f[0] for f in frames]}"
    finally:
        ui.window.unbind(on_flip=flipped)


def test_a_replaced_screen_is_freed_once_the_next_one_is_drawn(home_kiosk):
    """A screen's widgets are reference cycles: left to Python's collector (rarely a full one)
    every card read kept the last screens and their textures (~9 MB a read). With the automatic
    collector off, only the kiosk's own collection after the new frame can free the old one."""
    import gc
    import weakref

    kiosk, ui = home_kiosk
    was = gc.isenabled()
    gc.disable()
    try:
        home = weakref.ref(ui.root.built.widget)
        kiosk.service.card_read(CardRead("id_card", TOKEN_IN_UI, "1101**", "张*"))
        ui.wait_screen("appointments")
        listed = weakref.ref(ui.root.built.widget)
        ui.pump_for(0.2)
        assert home() is None, "the home screen's widgets are still alive"
        kiosk.service.go("home")
        ui.wait_screen("home")
        ui.pump_for(0.2)
        assert listed() is None, "the appointments screen's widgets are still alive"
    finally:
        if was:
            gc.enable()


def test_keys_and_touches_drive_the_screens(home_kiosk):
    kiosk, ui = home_kiosk
    assert "请刷身份证/就诊卡或扫描预约二维码" in ui.texts()
    assert ui.root.focus_index == 0
    ui.key("right")
    assert ui.root.focused.text == "就医指南" and ui.root.focused.focused
    ui.key("tab")
    ui.key("tab")
    ui.key("enter")  # survey
    ui.wait_screen("survey")
    assert ui.root.focused is None  # no answer chosen: Enter alone records nothing
    ui.key("enter")
    ui.pump_for(0.1)
    assert ui.root.view.data.i == 1
    ui.key("5")  # digits answer the survey
    ui.pump_until(lambda: ui.root.view.data.i == 2, what="question 2")
    ui.key("esc")  # back to question 1
    ui.pump_until(lambda: ui.root.view.data.i == 1, what="question 1")
    assert "非常满意" in ui.root.focused.text  # its answer is kept and has the focus
    ui.tap(ui.button("返回"))
    ui.pump_until(lambda: ui.screen == "home")
    kiosk.service.go("home")
    ui.wait_screen("home")
    ui.tap(ui.root.lang_button)  # language switch by touch
    ui.pump_until(lambda: "Hospital guide" in ui.texts(), what="English home")
    ui.tap(ui.button("Hospital guide"))
    ui.wait_screen("guide")
    ui.tap(ui.button("C"))
    ui.pump_until(lambda: ui.root.view.data.letter == "C", what="letter filter")
    assert "Cardiology" in ui.texts() and "Paediatrics" not in ui.texts()
    ui.tap(ui.button("Cardiology"))
    ui.pump_until(lambda: "Doctors today" in ui.texts(), what="department page")
    assert "李明" in ui.texts()
    ui.key("esc")
    ui.pump_until(lambda: ui.root.view.data.dept == "", what="department list")
    ui.tap(ui.root.lang_button)  # to Chinese: the English letter filter goes
    ui.pump_until(lambda: ui.root.view.lang == "zh", what="Chinese")
    assert ui.root.view.data.letter == "" and "心内科" in ui.texts()
    ui.tap(ui.root.lang_button)
    ui.pump_until(lambda: ui.root.view.lang == "en", what="English again")
    ui.key("esc")
    ui.wait_screen("home")
    assert ui.root.view.lang == "en"  # Back keeps the patient's language
    ui.tap(ui.root.lang_button)
    ui.pump_until(lambda: ui.root.view.lang == "zh", what="Chinese home")
    # feedback by keys: complaint, no department, a topic, a phone number on the keypad
    kiosk.service.go("feedback")
    ui.wait_screen("feedback")
    ui.tap(ui.button("投诉"))
    ui.pump_until(lambda: ui.root.view.data.step == "department")
    ui.key("enter")  # "不指定" has the focus
    ui.pump_until(lambda: ui.root.view.data.step == "topics")
    assert ui.root.focused.text == "下一步"
    ui.key("up", 4)
    ui.key("enter")  # toggles the first topic; the focus stays on it
    ui.pump_until(lambda: ui.root.focused.text.startswith("✓"), what="topic chosen")
    ui.tap(ui.button("下一步"))
    ui.pump_until(lambda: ui.root.view.data.step == "phone")
    for d in "13912345678":
        ui.key(d)
    ui.key("enter")  # the focus starts on 提交
    ui.wait_screen("feedback_done")
    [ev] = [e for e in kiosk.uplink.outbox.iter_all() if e.type == "feedback"]
    data = json.loads(ev.payload)["data"]
    assert data["category"] == "complaint" and data["topics"] == ["服务态度"]
    assert data["callback_phone"] == "13912345678"
    # the idle countdown overlay: a touch dismisses it and does nothing else
    kiosk.service.card_read(CardRead("id_card", TOKEN_IN_UI, "1101**", "张*"))
    ui.wait_screen("appointments")
    m = kiosk.service.machine
    kiosk.service.call(lambda: setattr(m, "_last_input", m.mono() - m.idle_timeout() - 1))
    ui.pump_until(lambda: ui.root._overlay is not None, what="idle overlay")
    # the patient's masked name and appointments are not legible under the overlay
    assert ui.root.screen_area.opacity == 0
    ui.tap(ui.buttons()[-1])
    ui.pump_until(lambda: ui.root._overlay is None, what="overlay gone")
    assert ui.screen == "appointments" and ui.root.screen_area.opacity == 1
    kiosk.service.go("home")
    ui.wait_screen("home")
    # the hidden gesture: five taps on the title bar, then the PIN
    for _ in range(5):
        ui.tap(ui.root.title_label)
    ui.wait_screen("pin")
    for d in "1234":
        ui.key(d)
    ui.tap(ui.button("确定"))
    ui.wait_screen("maintenance")
    assert "kiosk-01" in ui.texts()
    ui.key("esc")
    ui.wait_screen("home")
    # call staff and care mode are on every screen
    ui.tap(ui.root.care_button)
    ui.pump_until(lambda: ui.root.view.care and ui.root.sizes.care, what="care mode")
    ui.tap(ui.root.help_button)
    ui.wait_screen("help")
    assert "工作人员马上就到" in ui.texts()
    [alert] = [
        json.loads(e.payload)["data"] for e in kiosk.uplink.outbox.iter_all() if e.type == "alert"
    ]
    assert alert["kind"] == "help" and alert["severity"] == "warning"


def test_demo_kiosk_checks_in_a_demo_patient_by_tapping_a_demo_card(tmp_path, window_ui):
    """`careterm demo`'s kiosk config: simulated reader (demo card strip) and printer."""
    from careterm.demo import build_site
    from kiosk.ui.app import KioskRoot, demo_cards

    files = build_site(tmp_path / "site", "mqtt://127.0.0.1:1")
    kiosk = Kiosk(load_config(files["kiosk"]))
    kiosk.start()
    try:
        ui = window_ui(kiosk.service)
        ui.close()  # re-attach with the demo strip, as KioskApp does
        cards, present = demo_cards(kiosk.card_reader)
        assert cards and present is not None
        root = KioskRoot(kiosk.service, cards, present)
        ui.window.add_widget(root)
        ui.root = root
        ui.pump_until(lambda: root.built is not None)
        strip = [w for w in root.walk() if getattr(w, "text", "").endswith("身份证")]
        ui.tap(strip[0])
        ui.wait_screen("appointments")
        ui.key("enter")
        ui.wait_screen("done")
        if root.view.data.ticket == "printed":
            tickets = kiosk.printer.out_dir
            assert wait_for(lambda: list(tickets.glob("*.bin")), 5, what="simulated ticket")
            assert list(tickets.glob("*.png"))  # the preview a newcomer can open
        ui.shot(str(tmp_path / "demo.png"))
    finally:
        kiosk.stop()


def test_the_kiosk_starts_after_the_first_frame_and_a_stop_before_it_starts_nothing(
    tmp_path, config_writer, pty, monkeypatch
):
    """`careterm kiosk` (run_kiosk) listens to its card reader at once, starts its threads and
    opens its printer once the screen is drawn (a card read meanwhile is answered then);
    stopped before that (the window never came, SIGTERM), it starts nothing and stops cleanly;
    and it starts anyway after START_AFTER_MAX_S without a frame."""
    from drivers.printer.deferred import DeferredPrinter
    from kiosk import runner

    ticket = tmp_path / "t.bin"
    cfg = load_config(kiosk_config(tmp_path, config_writer, "mqtt://127.0.0.1:1", pty.path, ticket))
    drawn = threading.Event()
    kiosk = Kiosk(cfg, documents_after=drawn, printer_later=True, link_later=True)
    assert isinstance(kiosk.printer, DeferredPrinter) and kiosk.uplink is None
    assert kiosk.printer.state == DeviceState.UNKNOWN and kiosk.printer.inner is None
    kiosk.listen()
    starter = kiosk.start_after(drawn)
    wait_for(lambda: kiosk.card_reader.state == DeviceState.OK, 5, what="the reader opened")
    pty.write(NUMBER.encode() + b"\r\n")  # a patient while the screen comes up
    time.sleep(0.3)
    assert not kiosk.service.is_alive() and kiosk.uplink is None
    assert kiosk.printer.inner is None and kiosk.service.view.screen == "home"
    assert kiosk.healthy()  # waiting for the screen is not a fault for the watchdog
    drawn.set()
    wait_for(lambda: kiosk.printer.inner is not None, 10, what="the printer opened")
    v = wait_for(
        lambda: kiosk.service.view.screen == "appointments" and kiosk.service.view,
        10,
        what="the early card answered",
    )
    assert "B023" in [it.queue_no for it in v.data.items]
    assert kiosk.service.machine.reader == DeviceState.OK  # its state change was heard
    assert kiosk.service.is_alive() and kiosk.uplink.link.is_alive() and kiosk.healthy()
    starter.join(5)
    kiosk.stop()
    assert not kiosk.service.is_alive() and not kiosk.healthy()

    # Stopped before the first frame: nothing starts, not even once the event comes.
    never = threading.Event()
    k2 = Kiosk(cfg, documents_after=never, printer_later=True, link_later=True)
    s2 = k2.start_after(never)
    k2.stop()
    never.set()
    s2.join(5)
    assert not s2.is_alive() and not k2.service.is_alive() and k2.uplink is None
    assert k2.printer.inner is None and k2.printer.open() is None

    # No frame at all: started after the bound.
    monkeypatch.setattr(runner, "START_AFTER_MAX_S", 0.2)
    k3 = Kiosk(cfg, documents_after=threading.Event(), printer_later=True)
    k3.start_after(threading.Event())
    wait_for(lambda: k3.service.is_alive() and k3.printer.inner is not None, 10)
    k3.stop()

    # A link that cannot be made after the frame (the outbox's disk, say) is not swallowed by
    # the starter thread: `careterm kiosk` closes its screen and exits with it (run_kiosk).
    from terminal.storage import StorageError

    def no_link(self):
        raise StorageError("outbox.db: the disk is gone")

    monkeypatch.setattr(Kiosk, "_make_uplink", no_link)
    k4 = Kiosk(cfg, documents_after=threading.Event(), printer_later=True, link_later=True)
    errors: list[BaseException] = []
    shown = threading.Event()
    shown.set()
    k4.start_after(shown, errors.append).join(5)
    assert [str(e) for e in errors] == ["outbox.db: the disk is gone"]
    assert not k4.service.is_alive() and k4.uplink is None and k4.printer.inner is None
    k4.stop()
