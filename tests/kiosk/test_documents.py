"""The kiosk keeps its roster, directory and survey with terminal.documents (SPEC 9.4): bad or
other-date documents never replace the last good ones, the local `roster_file`, documents older
kiosks left in data_dir, and midnight."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from careterm.demo_data import demo_directory, demo_survey
from kiosk.service import KioskService
from terminal.config import parse_config
from terminal.uplink import Uplink

from .conftest import NOW, TOKEN, Wall, card, patient_roster


def write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def touch_later(path: Path, seconds: float) -> None:
    t = time.time() + seconds
    os.utime(path, (t, t))


def roster_at(day: datetime, token: str = TOKEN, generated: datetime | None = None) -> dict:
    doc = patient_roster(day, token)
    doc["generated"] = (generated or day).isoformat()
    return doc


def start(tmp_path: Path, wall: Wall | None = None, **kiosk: Any) -> tuple[KioskService, Uplink]:
    cfg = parse_config(
        {
            "device": {
                "id": "kiosk-01",
                "role": "kiosk",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "kiosk": kiosk,
        }
    )
    up = Uplink(cfg)  # not started: the outbox still records alerts
    svc = KioskService(cfg, up, now=wall or Wall())
    svc.start()
    return svc, up


def stop(svc: KioskService, up: Uplink) -> None:
    svc.stop()
    up.stop()


def alerts(up: Uplink) -> list[dict]:
    out = []
    for ev in up.outbox.iter_all():
        env = json.loads(ev.payload)
        if env["type"] == "alert":
            out.append(env["data"])
    return out


def tokens_today(svc: KioskService) -> set[str]:
    r = svc.call(svc.machine.today_roster)
    return {a.token for a in r.appointments} if r is not None else set()


def test_a_kiosk_keeps_its_directory_and_todays_roster(tmp_path: Path) -> None:
    """Issue 11: `{}` never replaces the directory, tomorrow's roster is kept aside, an empty
    roster is refused and never written over today's on disk; each refusal is an alert."""
    svc, up = start(tmp_path)
    try:
        svc.on_directory("careterm/main/directory", json.dumps(demo_directory()).encode())
        svc.on_roster("careterm/main/roster", json.dumps(roster_at(NOW, "1" * 32)).encode())
        departments = svc.call(lambda: len(svc.machine.directory.departments))
        assert departments > 0
        on_disk = svc.documents["roster"].path  # data_dir/documents/roster.json
        stored = on_disk.read_bytes()
        tomorrow = NOW + timedelta(days=1)
        svc.on_directory("careterm/main/directory", b"{}")
        svc.on_roster("careterm/main/roster", json.dumps(roster_at(tomorrow, "2" * 32)).encode())
        svc.on_roster("careterm/main/roster", b'{"v":1,"date":"2026-11-23","appointments":[]}')
        svc.call(lambda: None)
        assert svc.call(lambda: len(svc.machine.directory.departments)) == departments
        assert on_disk.read_bytes() == stored
        assert tokens_today(svc) == {"1" * 32}
        assert svc.documents["roster"].aside() == [tomorrow.date()]
        got = {(a["kind"], a["severity"], a["document"]) for a in alerts(up)}
        assert got == {("document", "warning", "directory"), ("document", "warning", "roster")}
        assert svc.is_alive() and svc.view.screen == "home"
    finally:
        stop(svc, up)


def test_roster_file_is_read_at_start_and_again_when_it_changes(tmp_path: Path) -> None:
    f = tmp_path / "site" / "roster.json"
    write(f, roster_at(NOW, "1" * 32))
    write(f.parent / "directory.json", demo_directory())
    write(f.parent / "survey.json", demo_survey())
    svc, up = start(tmp_path, roster_file=str(f))
    try:
        assert tokens_today(svc) == {"1" * 32}
        assert svc.call(lambda: len(svc.machine.directory.departments)) > 0
        assert svc.call(lambda: svc.machine.survey is not None)
        # A local file is its own copy: nothing is copied into data_dir/documents.
        assert not (tmp_path / "data" / "documents" / "roster.json").exists()
        write(f, roster_at(NOW, "2" * 32, generated=NOW + timedelta(minutes=5)))
        touch_later(f, 5)
        svc.card_read(card("2" * 32))  # each read looks at the file's modification time
        assert svc.call(lambda: svc.view.screen) == "appointments"
        # A torn edit is refused (a document alert), the last good one stays.
        f.write_text('{"v": 1, "date": "2026-11-23", "appoint')
        touch_later(f, 10)
        svc.card_read(card("2" * 32))
        assert svc.call(lambda: svc.view.screen) == "appointments"
        assert [(a["kind"], a["document"]) for a in alerts(up)] == [("document", "roster")]
        assert "roster_file" in alerts(up)[0]["source"]
    finally:
        stop(svc, up)


def test_a_roster_received_over_mqtt_wins_over_an_older_roster_file(tmp_path: Path) -> None:
    f = tmp_path / "roster.json"
    write(f, roster_at(NOW, "1" * 32, generated=NOW - timedelta(hours=3)))
    svc, up = start(tmp_path, roster_file=str(f))
    try:
        mqtt = roster_at(NOW, "2" * 32, generated=NOW - timedelta(hours=1))
        svc.on_roster("careterm/main/roster", json.dumps(mqtt).encode())
        assert tokens_today(svc) == {"2" * 32}
    finally:
        stop(svc, up)
    # After a restart the stored (newer) one is in use, not the older local file.
    svc, up = start(tmp_path, roster_file=str(f))
    try:
        assert tokens_today(svc) == {"2" * 32}
        # An edited local file generated later than it takes over.
        write(f, roster_at(NOW, "3" * 32, generated=NOW))
        touch_later(f, 5)
        svc.card_read(card("3" * 32))
        assert svc.call(lambda: svc.view.screen) == "appointments"
    finally:
        stop(svc, up)


def test_documents_older_kiosks_kept_in_data_dir_are_moved_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "roster.json", roster_at(NOW, "1" * 32))
    write(data / "roster-aside.json", roster_at(NOW + timedelta(days=1), "2" * 32))
    write(data / "directory.json", demo_directory())
    (data / "survey.json").write_text("{torn")
    svc, up = start(tmp_path)
    try:
        assert tokens_today(svc) == {"1" * 32}
        assert svc.documents["roster"].aside() == [NOW.date() + timedelta(days=1)]
        assert svc.call(lambda: len(svc.machine.directory.departments)) > 0
        assert svc.call(lambda: svc.machine.survey) is None
        assert alerts(up) == []  # reading its own files is no news for the site
    finally:
        stop(svc, up)
    docs = data / "documents"
    assert sorted(p.name for p in docs.iterdir()) == [
        "directory.json",
        "roster-2026-11-24.json",
        "roster-index",  # the appointments of today's roster and of the one kept aside
        "roster.json",
    ]
    assert len(list((docs / "roster-index").iterdir())) == 2
    assert not (data / "roster.json").exists() and not (data / "directory.json").exists()
    assert (data / "survey.json.unusable").exists() and not (data / "survey.json").exists()


def test_a_roster_file_inside_data_dir_is_never_moved_away(tmp_path: Path) -> None:
    f = tmp_path / "data" / "roster.json"
    write(f, roster_at(NOW, "1" * 32))
    svc, up = start(tmp_path, roster_file=str(f))
    try:
        assert tokens_today(svc) == {"1" * 32} and f.exists()
    finally:
        stop(svc, up)


def test_the_roster_kept_aside_takes_over_at_midnight(tmp_path: Path) -> None:
    wall = Wall()
    svc, up = start(tmp_path, wall)
    try:
        tomorrow = NOW + timedelta(days=1)
        svc.on_roster("careterm/main/roster", json.dumps(roster_at(NOW, "1" * 32)).encode())
        svc.on_roster("careterm/main/roster", json.dumps(roster_at(tomorrow, "2" * 32)).encode())
        assert tokens_today(svc) == {"1" * 32}
        svc.card_read(card("2" * 32))
        assert svc.call(lambda: svc.view.data.problem) == "no_appointment"
        wall.t = tomorrow
        assert tokens_today(svc) == {"2" * 32}
        svc.card_read(card("2" * 32))
        assert svc.call(lambda: svc.view.screen) == "appointments"
        stored = json.loads(svc.documents["roster"].path.read_text())
        assert stored["date"] == tomorrow.date().isoformat()
        assert "status_roster" not in svc.call(lambda: svc.view.status)
    finally:
        stop(svc, up)


def test_a_replaced_roster_s_index_file_is_removed_and_let_go(tmp_path: Path) -> None:
    """Each roster's appointments are an SQLite file (terminal.roster_index): a kiosk that gets
    a new roster many times a day neither keeps the old files nor holds them open (a removed
    file still open keeps its space on the SD card)."""
    svc, up = start(tmp_path)
    folder = tmp_path / "data" / "documents" / "roster-index"

    def held() -> list[str]:
        out = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                out.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        return [p for p in out if p.startswith(str(folder))]  # (other tests' kiosks aside)

    try:
        for i in range(5):
            token = str(i + 1) * 32
            doc = roster_at(NOW, token, generated=NOW + timedelta(minutes=i))
            svc.on_roster("careterm/main/roster", json.dumps(doc).encode())
            assert tokens_today(svc) == {token}
            (kept,) = folder.iterdir()
            assert held() == [str(kept)], held()
    finally:
        stop(svc, up)


def test_a_restarted_kiosk_opens_its_roster_s_index_instead_of_building_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The roster_file's index (not stored among the documents) survives the restart's start-up
    tidying: the same roster is not decoded nor validated again (seconds of a Pi's CPU)."""
    import terminal.roster_rows as rows

    built: list[Any] = []
    real = rows._parse
    monkeypatch.setattr(rows, "_parse", lambda p, path: (built.append(path), real(p, path))[1])
    f = tmp_path / "roster.json"
    write(f, roster_at(NOW, "1" * 32))
    for _ in range(3):
        svc, up = start(tmp_path, roster_file=str(f))
        try:
            assert tokens_today(svc) == {"1" * 32}
        finally:
            stop(svc, up)
    assert len(built) == 1 and built[0] is not None
    assert len(list((tmp_path / "data" / "documents" / "roster-index").iterdir())) == 1


def big_roster_at(day: datetime, token: str, n: int = 1500) -> bytes:
    """A roster a child process validates (terminal.roster_rows.CHILD_MIN_BYTES and up)."""
    from terminal.roster_rows import in_child

    doc = roster_at(day, token)
    first = doc["appointments"][0]
    doc["appointments"] += [
        dict(first, id=f"X{day:%Y%m%d}-{i:05d}", token=f"{i:032x}", queue_no=f"X{i}")
        for i in range(n)
    ]
    payload = json.dumps(doc, ensure_ascii=False).encode()
    assert in_child(payload)
    return payload


def test_a_big_roster_replacing_the_one_in_use_is_validated_off_the_core_thread(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The child that validates a big roster takes seconds of a Pi-class CPU: meanwhile the
    roster in use answers card reads. Without a roster in use, a card read waits for it."""
    import threading

    from ..conftest import wait_for

    topic = "careterm/main/roster"
    svc, up = start(tmp_path)
    store = svc.documents["roster"]
    real = store.prepare
    gate, entered = threading.Event(), threading.Event()

    def slow(payload: bytes) -> Any:
        entered.set()
        assert gate.wait(20)
        return real(payload)

    try:
        # the first roster: validated on the core thread, a card read waits for it
        svc.on_roster(topic, big_roster_at(NOW, "1" * 32))
        assert "1" * 32 in tokens_today(svc)
        monkeypatch.setattr(store, "prepare", slow)
        svc.on_roster(topic, big_roster_at(NOW, "2" * 32))
        svc.on_roster(topic, json.dumps(roster_at(NOW, "3" * 32)).encode())  # after it, in order
        assert entered.wait(10)
        svc.card_read(card("1" * 32))  # answered now, from the roster in use
        assert svc.call(lambda: svc.view.screen, timeout=2) == "appointments"
        assert "1" * 32 in tokens_today(svc)
        gate.set()
        wait_for(lambda: tokens_today(svc) == {"3" * 32}, 30, what="the last roster in use")
        folder = tmp_path / "data" / "documents" / "roster-index"
        wait_for(lambda: len(list(folder.iterdir())) == 1, 10, what="the replaced files removed")
    finally:
        gate.set()
        stop(svc, up)
