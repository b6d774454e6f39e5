"""Patient privacy on the kiosk (SPEC 4.1, 5, 6.5): what a refused roster says, how long a
roster stays on the device, who may read the kiosk's files, and what an idle kiosk forgets.

Recognisable values are fed in and looked for everywhere they could end up: the log (DEBUG),
the alerts in the outbox (what MQTT and the site database get), the maintenance screen, the
disk and the machine's state."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drivers.base import DeviceState
from drivers.card_reader.base import CardRead
from kiosk.machine import COUNTDOWN_S, KioskMachine
from kiosk.roster import Roster
from kiosk.service import KioskService
from kiosk.views import Screen
from terminal.config import parse_config
from terminal.privacy import lookup_token
from terminal.uplink import Uplink

from .conftest import NOW, TOKEN, Wall, patient_roster

ID_NUMBER = "11010519491231002X"
FULL_NAME = "欧阳明月"
PHONE = "13812345678"
BIRTH = "19491231"
SALT = b"audit-salt"


def _config(tmp_path: Path) -> Any:
    return parse_config(
        {
            "device": {
                "id": "kiosk-01",
                "role": "kiosk",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
        }
    )


def named_roster(name: str) -> dict[str, Any]:
    """Today's test roster with every patient's name set to `name` (as a HIS might send it)."""
    doc = roster(NOW)
    for a in doc["appointments"]:
        a["name"] = name
    return doc


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[tuple[KioskService, Uplink, Wall]]:
    wall = Wall()
    cfg = _config(tmp_path)
    up = Uplink(cfg)  # not started: the outbox still records alerts, as MQTT would get them
    svc = KioskService(cfg, up, now=wall)
    svc.start()
    try:
        yield svc, up, wall
    finally:
        svc.stop()
        up.stop()


def roster(day: datetime, token: str = TOKEN) -> dict[str, Any]:
    doc = patient_roster(day, token)
    doc["generated"] = day.isoformat()
    return doc


def offer(svc: KioskService, doc: dict[str, Any]) -> None:
    svc.on_roster("careterm/main/roster", json.dumps(doc, ensure_ascii=False).encode())
    svc.call(lambda: None)


def outbox_text(up: Uplink) -> str:
    return "\n".join(ev.payload.decode() for ev in up.outbox.iter_all())


def index_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data" / "documents" / "roster-index").glob("*.roster.sqlite"))


# -- a refused roster --------------------------------------------------------------------------


def test_a_refused_roster_never_repeats_an_id_number_or_name_it_carries(
    kiosk: tuple[KioskService, Uplink, Wall], caplog: pytest.LogCaptureFixture
) -> None:
    """A HIS export whose columns slipped puts an ID number and a full name in a time field: the
    roster is refused, and the fault names the field, but neither the log, the `document` alert
    (MQTT, the site database, the console) nor the maintenance screen repeats the value."""
    svc, up, _ = kiosk
    caplog.set_level(logging.DEBUG)
    offer(svc, roster(NOW))
    bad = roster(NOW, "2" * 32)
    bad["appointments"][0]["slot_start"] = f"{ID_NUMBER} {FULL_NAME}"
    bad["appointments"][1]["slot_end"] = f"{FULL_NAME} {PHONE}"
    offer(svc, bad)
    (alert,) = [
        json.loads(ev.payload)["data"]
        for ev in up.outbox.iter_all()
        if json.loads(ev.payload)["data"].get("kind") == "document"
    ]
    assert "appointments.0.slot_start" in alert["fault"]  # still says what is wrong, and where
    svc.call(lambda: svc.machine.go("pin"))
    rows = svc.call(svc._maintenance_rows)
    for where, text in (
        ("log", caplog.text),
        ("alerts", outbox_text(up)),
        ("maintenance", repr(rows) + repr(svc.problems)),
    ):
        for value in (ID_NUMBER, FULL_NAME, PHONE):
            assert value not in text, f"{value} in the {where}"
    assert svc.call(lambda: {a.token for a in svc.machine.today_roster().appointments}) == {TOKEN}


def test_a_roster_on_disk_that_is_not_usable_is_logged_without_its_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same at start-up: a damaged roster.json is named in the log, its values are not."""
    bad = roster(NOW)
    bad["appointments"][0]["slot_end"] = f"{ID_NUMBER} {FULL_NAME}"
    path = tmp_path / "data" / "documents" / "roster.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    caplog.set_level(logging.DEBUG)
    cfg = _config(tmp_path)
    up = Uplink(cfg)
    svc = KioskService(cfg, up, now=Wall())
    try:
        assert "roster.json is not usable" in caplog.text
        assert ID_NUMBER not in caplog.text and FULL_NAME not in caplog.text
    finally:
        svc.stop()
        up.stop()


# -- a roster with full names ---------------------------------------------------------------------


def test_a_roster_with_full_names_never_puts_them_on_the_kiosk_s_disk(
    kiosk: tuple[KioskService, Uplink, Wall], tmp_path: Path
) -> None:
    """A HIS publishing SPEC 6.5 itself may send full names: the kiosk takes the roster (and
    shows only 欧**月), and keeps only the masked names on disk, in its copy of the roster and
    in the roster's index; a kiosk restarted from that copy still checks the patient in."""
    svc, up, wall = kiosk
    doc = named_roster(FULL_NAME)
    offer(svc, doc)
    svc.card_read(CardRead("id_card", TOKEN, "1101**********002X", "欧*"))
    assert svc.call(lambda: svc.view.data.patient) == "欧**月"
    files = [svc.documents["roster"].path, *index_files(tmp_path)]
    assert len(files) == 2
    for path in files:
        data = path.read_bytes()
        for form in (FULL_NAME.encode(), json.dumps(FULL_NAME).encode()[1:-1]):
            assert form not in data, path
    assert "欧**月".encode() in files[0].read_bytes()
    svc.stop()
    up.stop()
    cfg = _config(tmp_path)
    up2 = Uplink(cfg)
    again = KioskService(cfg, up2, now=wall)
    again.start()
    try:
        again.card_read(CardRead("id_card", TOKEN, "1101**********002X", "欧*"))
        assert again.call(lambda: again.view.data.patient) == "欧**月"
        offer(again, doc)  # the retained roster again, at the next connect
        for path in [again.documents["roster"].path, *index_files(tmp_path)]:
            assert FULL_NAME.encode() not in path.read_bytes(), path
    finally:
        again.stop()
        up2.stop()


def test_a_name_with_a_star_that_still_shows_most_of_it_is_masked_again(
    kiosk: tuple[KioskService, Uplink, Wall], tmp_path: Path
) -> None:
    """A `*` alone does not make a name masked: `欧阳明*月` (or `Zhang*San Feng`) shows almost
    all of it, and is masked as a full name is, on screen and on disk."""
    svc, _, _ = kiosk
    half = "欧阳明*月"
    doc = named_roster(half)
    offer(svc, doc)
    svc.card_read(CardRead("id_card", TOKEN, "1101**********002X", "欧*"))
    assert svc.call(lambda: svc.view.data.patient) == "欧***月"
    for path in [svc.documents["roster"].path, *index_files(tmp_path)]:
        assert "欧阳明".encode() not in path.read_bytes(), path


def test_full_names_an_older_version_kept_on_disk_are_masked_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kiosk upgraded from a version that kept a HIS's full names (its copy of the roster, an
    index file of format 1) rewrites both with masked names when it starts."""
    import hashlib

    from terminal import roster_index
    from terminal.roster_rows import parse_roster

    doc = named_roster(FULL_NAME)
    payload = json.dumps(doc, ensure_ascii=False).encode()
    documents = tmp_path / "data" / "documents"
    documents.mkdir(parents=True)
    (documents / "roster.json").write_bytes(payload)
    monkeypatch.setattr(roster_index, "FORMAT", "1")
    parse_roster(payload, documents / "roster-index", child=False)  # as the old version did
    monkeypatch.undo()
    (old,) = index_files(tmp_path)
    assert old.name == roster_index.index_name(hashlib.sha256(payload).hexdigest())
    assert FULL_NAME.encode() in old.read_bytes()
    cfg = _config(tmp_path)
    up = Uplink(cfg)
    svc = KioskService(cfg, up, now=Wall())
    svc.start()
    try:
        svc.card_read(CardRead("id_card", TOKEN, "1101**********002X", "欧*"))
        assert svc.call(lambda: svc.view.data.patient) == "欧**月"
        for path in [documents / "roster.json", *index_files(tmp_path)]:
            assert FULL_NAME.encode() not in path.read_bytes(), path
    finally:
        svc.stop()
        up.stop()


# -- how long a roster stays ---------------------------------------------------------------------


def test_yesterday_s_roster_leaves_the_disk_at_midnight(
    kiosk: tuple[KioskService, Uplink, Wall], tmp_path: Path
) -> None:
    """A past day's roster is never used for check-in again: at midnight its file and its index
    leave the disk, even when no roster comes for the new day (a Sunday, a site that stopped
    publishing), instead of staying until the next one replaces them."""
    svc, _, wall = kiosk
    offer(svc, roster(NOW))
    stored = svc.documents["roster"].path
    assert stored.exists() and index_files(tmp_path)
    wall.t = NOW + timedelta(days=1)
    assert svc.call(svc.machine.today_roster) is None
    assert not stored.exists()
    assert index_files(tmp_path) == []


def test_a_kiosk_started_on_a_later_day_removes_the_past_roster(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    up = Uplink(cfg)
    svc = KioskService(cfg, up, now=Wall())
    svc.start()
    offer(svc, roster(NOW))
    svc.stop()
    up.stop()
    stored = tmp_path / "data" / "documents" / "roster.json"
    assert stored.exists() and index_files(tmp_path)
    later = Wall()
    later.t = NOW + timedelta(days=3)
    up = Uplink(cfg)
    svc = KioskService(cfg, up, now=later)
    svc.start()
    try:
        assert svc.call(svc.machine.today_roster) is None
        assert not stored.exists()
        assert index_files(tmp_path) == []
    finally:
        svc.stop()
        up.stop()


def test_a_roster_for_a_later_day_is_still_kept_when_the_clock_is_behind(tmp_path: Path) -> None:
    """A Pi without a real-time clock starts behind: today's roster then looks like
    tomorrow's, and must be kept for its day, not removed."""
    cfg = _config(tmp_path)
    up = Uplink(cfg)
    svc = KioskService(cfg, up, now=Wall())
    svc.start()
    offer(svc, roster(NOW))
    svc.stop()
    up.stop()
    behind = Wall()
    behind.t = NOW - timedelta(days=1)
    up = Uplink(cfg)
    svc = KioskService(cfg, up, now=behind)
    svc.start()
    try:
        assert svc.documents["roster"].aside() == [NOW.date()]
        behind.t = NOW
        assert svc.call(lambda: len(svc.machine.today_roster() or ())) == 3
    finally:
        svc.stop()
        up.stop()


# -- who may read the kiosk's files --------------------------------------------------------------


def test_the_kiosk_s_files_are_closed_to_other_users_whatever_the_umask(tmp_path: Path) -> None:
    """data_dir (outbox: callback phone numbers, tokens) and the documents folder (the roster)
    open to no other user, and the roster's index file is not world-readable, also when the
    kiosk is started by hand with umask 022 (the systemd unit sets 0027)."""
    old = os.umask(0o022)
    try:
        cfg = _config(tmp_path)
        up = Uplink(cfg)
        svc = KioskService(cfg, up, now=Wall())
        svc.start()
        try:
            offer(svc, roster(NOW))
        finally:
            svc.stop()
            up.stop()
    finally:
        os.umask(old)
    data = tmp_path / "data"
    for path in (data, data / "documents", *index_files(tmp_path)):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o007 == 0, f"{path} is {mode:o}"


# -- an idle kiosk forgets the patient ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def mono(self) -> float:
        return self.t


def test_an_idle_kiosk_keeps_nothing_a_patient_typed_or_read() -> None:
    """A patient reads a card, looks up by phone and birth date, starts a feedback form with a
    callback number and walks away: after the idle time-out no part of the machine's state
    holds the number, the birth date, the card's token or the appointments."""
    clock = Clock()
    cfg = parse_config(
        {
            "device": {"id": "kiosk-01", "role": "kiosk", "site": "main", "data_dir": "/tmp/x"},
            "kiosk": {"lookup": ["appointment", "phone_birth"]},
        }
    )
    now = NOW
    m = KioskMachine(cfg, salt=SALT, mono=clock.mono, now=lambda: now)
    doc = patient_roster(now)
    doc["appointments"][1]["lookup"] = [lookup_token(SALT, "phone_birth", PHONE + BIRTH)]
    m.set_rosters(Roster.parse(doc))
    m.device_state("card_reader", DeviceState.OK)
    m.card(CardRead("medical_card", TOKEN, "6222********5678", "欧*"))
    assert m.screen == Screen.APPOINTMENTS
    m.go("checkin")
    m.go("lookup")
    m.lookup_method("phone_birth")
    for key in PHONE + BIRTH:
        m.lookup_key(key)
    m.lookup_key("ok")
    assert m.screen == Screen.APPOINTMENTS
    m.go("feedback")
    m.feedback("category", "complaint")
    m.feedback("department", None)
    m.feedback("next")
    for d in PHONE:
        m.feedback("digit", d)
    assert PHONE in repr(m.view())
    clock.t += m.idle_timeout() + COUNTDOWN_S + 1
    m.tick()
    assert m.screen == Screen.HOME
    state = repr(vars(m)) + repr(m.view())
    for value in (PHONE, BIRTH, TOKEN, "6222", "欧*", "A20261123-0042"):
        assert value not in state, value
