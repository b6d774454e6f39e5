"""Commands to a device (SPEC 4, 9.4): exactly one reply to every command whose cid is read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from terminal.device_commands import DeviceCommands


def commands() -> tuple[DeviceCommands, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    dc = DeviceCommands(
        outbox=None,  # type: ignore[arg-type]  # none of these commands gets that far
        send_reply=lambda b: sent.append(json.loads(b)),
        resend_from=lambda first: None,
        session=lambda: 1,
    )
    return dc, sent


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b'{"cid": "' + b"q" * 200 + b'"}', "128 characters"),  # valid JSON, cid too long
        (b'{"cid": "' + b"q" * 200 + b'", "ticket": ', "not JSON"),  # and not JSON either
    ],
)
def test_a_command_with_an_over_long_cid_gets_one_refusal_carrying_that_cid(
    payload: bytes, why: str
) -> None:
    """SPEC 9.4: every command, however malformed, gets exactly one `ok: false` reply with a
    reason whenever a cid can be read. A 200-character cid is readable; before, such a command
    got no reply at all and its sender waited in vain."""
    dc, sent = commands()
    dc.handle("prompt", payload)
    assert len(sent) == 1, sent
    assert sent[0]["cid"] == "q" * 200
    assert sent[0]["ok"] is False and why in sent[0]["error"], sent[0]


def test_a_command_without_a_readable_cid_gets_no_reply() -> None:
    dc, sent = commands()
    for payload in (b"not json", b'{"cid": ""}', b'{"ticket": "A1"}'):
        dc.handle("prompt", payload)
    assert sent == []
