"""Pad fixtures: a whole in-process pad (real broker, pty keypad) and a command helper."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.base import DeviceState
from rating_pad.runner import Pad
from terminal.config import load_config
from tests.conftest import Broker, Pty, Subscriber, wait_for

BASE = "careterm/main/pad-w03"
STAFF = [
    {"staff": "E1024", "name": "王芳", "title": "收费员", "token": "a" * 32, "photo": None},
    {"staff": "E2000", "name": "李雷", "title": "挂号员", "token": "b" * 32, "photo": None},
]


class PadRig:
    """A started pad plus a subscriber on everything it publishes."""

    def __init__(self, pad: Pad, sub: Subscriber, pty: Pty) -> None:
        self.pad = pad
        self.sub = sub
        self.pty = pty

    @property
    def service(self) -> Any:
        return self.pad.service

    def keys(self, data: bytes, handled: int | None = None) -> None:
        """Type on the pty keypad and wait until the core thread took `handled` more inputs."""
        before = self.service.handled
        self.pty.write(data)
        if handled:
            wait_for(
                lambda: self.service.handled >= before + handled,
                5,
                what=f"{data!r} handled by the pad (core alive: "
                f"{self.service.is_alive()}, inputs {self.service.handled})",
            )

    def cmd(self, name: str, **body: Any) -> dict[str, Any]:
        return send_command(self.sub, name, body)

    def events(self, etype: str) -> list[dict[str, Any]]:
        return self.sub.events(etype)

    def wait_events(self, etype: str, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        return wait_for(
            lambda: (ev := self.events(etype)) and len(ev) >= n and ev,
            timeout,
            what=f"{n} {etype} events",
        )

    def state(self) -> str:
        return self.service.machine.state.value


def send_command(
    sub: Subscriber, name: str, body: dict[str, Any] | bytes, base: str = BASE
) -> dict[str, Any]:
    """Publish `cmd/<name>` and return the `reply` with the same cid."""
    if isinstance(body, dict):
        cid = body.get("cid") or uuid.uuid4().hex
        payload: Any = {**body, "cid": cid}
    else:
        cid, payload = None, body
    sub.publish(f"{base}/cmd/{name}", payload)
    return wait_for(
        lambda: next((r for r in sub.payloads("/reply") if r.get("cid") == cid), None),
        10,
        what=f"reply to {name}",
    )


def wait_subscribed(sub: Subscriber, base: str = BASE) -> None:
    """The pad's subscriptions are live once a ping gets a reply."""
    wait_for(lambda: _ping(sub, base), 15, every=0.2, what="the pad answering ping")


def _ping(sub: Subscriber, base: str) -> bool:
    cid = uuid.uuid4().hex
    sub.publish(f"{base}/cmd/ping", {"cid": cid})
    try:
        wait_for(lambda: any(r.get("cid") == cid for r in sub.payloads("/reply")), 0.5)
        return True
    except AssertionError:
        return False


@pytest.fixture
def pad_rig(
    broker: Broker,
    pty: Pty,
    config_writer: Callable[..., Path],
    subscriber_factory: Callable[..., Subscriber],
) -> Iterator[Callable[..., PadRig]]:
    made: list[Pad] = []

    def make(
        rating: str = "",
        extra: str = "",
        staff: list[dict[str, Any]] | None = None,
        sign_in: str | None = "E1024",
        window: str = "W03",
    ) -> PadRig:
        if "min_response_ms" not in rating:
            rating = f"min_response_ms = 0\n{rating}"  # tests press at once after a prompt
        if "voice" not in rating:
            rating = f"voice = false\n{rating}"  # no sound card here: no player processes
        toml = f'[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n[rating]\n{rating}\n{extra}'
        path = config_writer(broker_url=broker.url, extra=toml, window_id=window)
        sub = subscriber_factory(broker.port, [f"{BASE}/#"])
        sub.publish("careterm/main/staff", STAFF if staff is None else staff, retain=True)
        pad = Pad(load_config(path), str(path))
        made.append(pad)
        pad.start()
        wait_subscribed(sub)
        wait_for(lambda: pad.service.machine.directory, 10, what="staff directory")
        # pyserial flushes the input when it opens the port: type only after that.
        wait_for(lambda: pad.keypad.state == DeviceState.OK, 5, what="keypad open")
        rig = PadRig(pad, sub, pty)
        if sign_in:
            assert rig.cmd("staff", action="sign_in", staff=sign_in)["ok"]
            rig.wait_events("staff", 1)
        return rig

    yield make
    for p in made:
        p.stop()
