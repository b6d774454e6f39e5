"""The pad's state file on a disk that refuses it: a calm log, retries once a second, nothing
lost, and `cmd/prompt` replies that say whether their cid was saved. The service runs step by
step on a controlled clock (no broker, no threads); only the state file's writes fail."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rating_pad.service import SAVE_REMIND_S, STATE_FILE, PadService, write_state_file
from terminal.config import DeviceConfig, parse_config
from terminal.outbox import Outbox, StoredEvent

TICK_S = 0.125  # the core's tick, as a binary fraction: the clock adds up exactly


class OutboxUplink:
    """The uplink without a broker: events go into a real outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def alert(self, kind: str, severity: str, message: str, **details: Any) -> StoredEvent:
        data = {"kind": kind, "severity": severity, "message": message, **details}
        return self.record("alert", data, alert_kind=kind)

    def record(self, etype: str, data: dict[str, Any], *, alert_kind: str = "") -> StoredEvent:
        return self.outbox.store(etype, data, alert_kind=alert_kind)


class Disk:
    """Where the state file goes: refuses it as a full disk does while `full`."""

    def __init__(self) -> None:
        self.full = False
        self.tries = 0

    def write(self, path: Path, data: bytes) -> None:
        self.tries += 1
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device", f"{path}.tmp")
        write_state_file(path, data)


class Pad:
    """One pad process: its service over a real outbox in `data_dir`, on the test's clock."""

    def __init__(self, cfg: DeviceConfig, disk: Disk) -> None:
        self.now = 1000.0
        self.outbox = Outbox(cfg.data_dir / "outbox.sqlite", device="pad-w03", site="main")
        self.svc = PadService(
            cfg,
            OutboxUplink(self.outbox),
            clock=lambda: self.now,
            wall=lambda: 1.9e9 + self.now,
            write_state=disk.write,
        )
        self.svc.restore()
        self.replies: list[tuple[bool, Any, Any]] = []

    def run(self, seconds: float = 0.0) -> None:
        """Take the queued inputs, then let `seconds` pass in core ticks."""
        self.svc.run_pending()
        for _ in range(round(seconds / TICK_S)):
            self.now += TICK_S
            self.svc.run_pending()

    def cmd(self, name: str, **body: Any) -> tuple[bool, Any, Any]:
        body.setdefault("cid", f"c-{len(self.replies)}")
        self.svc.on_command(name, body, lambda ok, res, err: self.replies.append((ok, res, err)))
        self.run()
        return self.replies[-1]


@pytest.fixture
def cfg(tmp_path: Path) -> DeviceConfig:
    return parse_config(
        {
            "device": {
                "id": "pad-w03",
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(tmp_path),
            },
            "window": {"id": "W03", "name": "收费处 3号窗口"},
            "rating": {"mode": "prompted", "prompt_window_s": 600, "voice": False},
        }
    )


@pytest.fixture
def pads(cfg: DeviceConfig) -> Iterator[list[Pad]]:
    made: list[Pad] = []
    yield made
    for p in made:
        p.outbox.close()


def saved(cfg: DeviceConfig) -> dict[str, Any]:
    return json.loads((cfg.data_dir / STATE_FILE).read_text(encoding="utf-8"))


def save_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "careterm.pad" and STATE_FILE in r.getMessage()
    ]


def test_a_full_disk_is_logged_once_then_once_a_minute_tried_each_second_and_nothing_lost(
    cfg, pads, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="careterm.pad")
    disk = Disk()
    pad = Pad(cfg, disk)
    pads.append(pad)
    pad.run(1)
    assert saved(cfg)["paused"] is False
    disk.full = True
    tries = disk.tries
    ok, result, _ = pad.cmd("pause")
    assert ok and result["changed"] is True and result["stored"] is False  # event yes, state no
    pad.run(595)  # almost ten minutes of core ticks with a change waiting to be saved
    # the first failure and one reminder a minute: 1 + 9 lines, not one per tick
    lines = save_lines(caplog)
    assert len(lines) == 1 + int(595 // SAVE_REMIND_S)
    assert "cannot save" in lines[0] and "disk full ([Errno 28] No space left on device" in lines[0]
    assert all("still cannot save" in line for line in lines[1:])
    assert disk.tries - tries == 1 + 595  # the pause itself, then once a second
    assert pad.cmd("prompt", cid="q-p") == (False, None, "cannot prompt: paused")
    ok, result, _ = pad.cmd("staff", action="sign_in", staff="E1024")  # another change
    assert ok and result["changed"] is True and result["stored"] is False
    assert saved(cfg)["paused"] is False and saved(cfg)["staff"] is None  # before the pause
    disk.full = False
    pad.run(1)  # the next try saves the newest state: nothing in between is lost
    assert saved(cfg) == pad.svc.snapshot()
    assert saved(cfg)["staff"]["staff"] == "E1024"  # (a sign-in ends the pause)
    assert saved(cfg)["cids"]["q-p"] == {"ok": False, "error": "cannot prompt: paused"}
    lines = save_lines(caplog)
    assert len(lines) == 11 and "saved again" in lines[-1]
    ok, result, _ = pad.cmd("pause")
    assert ok and "stored" not in result and saved(cfg)["paused"] is True  # at once
    tries = disk.tries
    pad.run(120)  # nothing changes: nothing written, nothing logged
    assert disk.tries == tries and len(save_lines(caplog)) == 11


def test_a_prompt_cid_the_disk_refused_says_stored_false_until_saved_then_survives_a_restart(
    cfg, pads
) -> None:
    disk = Disk()
    pad = Pad(cfg, disk)
    pads.append(pad)
    ok, result, _ = pad.cmd("prompt", cid="q-1", ticket="A1")
    assert ok and "stored" not in result  # saved: a restart knows the cid
    assert "q-1" in saved(cfg)["cids"]
    disk.full = True
    ok, first, _ = pad.cmd("prompt", cid="q-2", ticket="B777")
    assert ok and first["stored"] is False  # the cid is in memory only
    assert "q-2" not in saved(cfg)["cids"]
    assert pad.cmd("prompt", cid="q-2", ticket="B777") == (True, first, None)  # opens nothing
    assert pad.svc.machine.open is not None and pad.svc.machine.open.id == first["prompt"]
    pad.run(5)
    assert "q-2" not in saved(cfg)["cids"]
    disk.full = False
    pad.run(1)  # the next try takes it
    assert saved(cfg)["cids"]["q-2"]["result"]["prompt"] == first["prompt"]
    again = pad.cmd("prompt", cid="q-2", ticket="B777")
    assert again == (True, {k: v for k, v in first.items() if k != "stored"}, None)
    pad.outbox.close()
    pads.remove(pad)
    pad2 = Pad(cfg, disk)  # a restart (kill -9 or not: the file is what counts)
    pads.append(pad2)
    assert pad2.cmd("prompt", cid="q-2", ticket="B777") == again
    assert pad2.svc.machine.open is not None and pad2.svc.machine.open.id == first["prompt"]
