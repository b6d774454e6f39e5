"""Kiosk fixtures: a kiosk service on a real outbox (broker unreachable unless a test gives one),
a memory printer, and a roster for one patient with three appointments around now."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from careterm.demo_data import demo_directory, demo_survey
from drivers.card_reader.base import CardRead
from kiosk.runner import Kiosk
from kiosk.service import KioskService, View
from terminal.config import parse_config
from terminal.uplink import Uplink

from ..conftest import now_clear_of_midnight, wait_for
from .fakes import MemoryPrinter

TOKEN = "a" * 32
PIN_1234 = "03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4"


def patient_roster(now: datetime, token: str = TOKEN) -> dict[str, Any]:
    """Slot 1 ended 150 min ago (too late), slot 2 starts in 15 min (open), slot 3 in 200 min
    (too early with the default 60 min)."""

    def row(i: int, minutes: int, dept: str, name: str, q: str) -> dict[str, Any]:
        start = (now + timedelta(minutes=minutes)).replace(microsecond=0)
        return {
            "id": f"A{now:%Y%m%d}-{i:04d}",
            "token": token,
            "name": "张*三",
            "department_id": dept,
            "department": name,
            "doctor": "李明",
            "room": "门诊3楼 305诊室",
            "slot_start": start.isoformat(),
            "slot_end": (start + timedelta(minutes=30)).isoformat(),
            "queue_no": q,
        }

    return {
        "v": 1,
        "date": now.date().isoformat(),
        "generated": now.isoformat(),
        "appointments": [
            row(41, -180, "ortho", "骨科", "G015"),
            row(42, 15, "cardio", "心内科", "B023"),
            row(43, 200, "gastro", "消化内科", "D007"),
        ],
    }


def card(token: str = TOKEN, kind: str = "id_card") -> CardRead:
    return CardRead(kind, token, "1101**********7774", "张*")


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.views: list[View] = []
        self.svc: KioskService | None = None
        self.uplink: Uplink | None = None
        self.printer = MemoryPrinter()

    def write(self, name: str, doc: Any) -> None:
        """A document as the kiosk keeps it (`roster.json` -> data_dir/documents/roster.json)."""
        path = self.data / "documents" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    def start(
        self,
        broker_url: str = "mqtt://127.0.0.1:1",
        printer: Any = "memory",
        card_reader: Any = None,
        documents_after: threading.Event | None = None,
        **kiosk: Any,
    ) -> KioskService:
        kiosk.setdefault("maintenance_pin_sha256", PIN_1234)
        cfg = parse_config(
            {
                "device": {
                    "id": "kiosk-01",
                    "role": "kiosk",
                    "site": "main",
                    "data_dir": str(self.data),
                },
                "mqtt": {"url": broker_url, "keepalive_s": 5},
                "kiosk": kiosk,
            }
        )
        self.cfg = cfg
        # The runner's own assembly: uplink subscribed to roster/directory/survey, no drivers.
        self.kiosk = Kiosk(
            cfg,
            printer=self.printer if printer == "memory" else printer,
            card_reader=card_reader,
            open_drivers=False,
            documents_after=documents_after,
        )
        self.uplink = self.kiosk.uplink
        self.svc = self.kiosk.service
        self.svc.on_view(self.views.append)
        self.kiosk.start()
        return self.svc

    def stop(self) -> None:
        if self.svc is not None:
            self.kiosk.stop()
            self.svc = None
            self.uplink = None

    def wait_view(self, screen: str, timeout: float = 5.0) -> View:
        return wait_for(
            lambda: self.svc.view if self.svc.view.screen == screen else None,
            timeout,
            what=f"screen {screen} (now {self.svc.view.screen})",
        )

    def events(self, etype: str | None = None) -> list[dict[str, Any]]:
        out = []
        for ev in self.uplink.outbox.iter_all():
            env = json.loads(ev.payload)
            if etype is None or env["type"] == etype:
                out.append(env)
        return out


NOW = datetime(2026, 11, 23, 9, 0).astimezone()
"""A fixed morning for the service tests that set the kiosk's clock (`Wall`)."""


class Wall:
    """The kiosk's wall clock (`KioskService(now=...)`), moved by setting `t`."""

    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def kiosk_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(sub: str = "") -> Harness:
        h = Harness(tmp_path / sub if sub else tmp_path)
        h.tmp.mkdir(exist_ok=True)
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()


@pytest.fixture
def harness(kiosk_harness: Callable[..., Harness]) -> Harness:
    h = kiosk_harness()
    now = now_clear_of_midnight()
    h.write("roster.json", patient_roster(now))
    h.write("directory.json", demo_directory())
    h.write("survey.json", demo_survey())
    return h


@pytest.fixture(scope="module")
def window_ui():
    """One window per process: every test attaches its own kiosk to it."""
    from .uikit import UI

    made: list = []

    def make(service, size=(1280, 800)):
        ui = UI(service, size)
        made.append(ui)
        return ui

    yield make
    for ui in made:
        try:
            ui.close()
        except Exception:
            pass
