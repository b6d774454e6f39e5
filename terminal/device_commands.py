"""MQTT commands to a device (SPEC 4, 9.4): validated with terminal.payloads, one reply each.

Every command whose `cid` can be read gets exactly one reply, however malformed it is: an
unknown name, a payload that is not JSON or nested too deep, a value out of range (a `resend`
`from` of 2^63), an app handler that fails or answers twice. `ping` and `resend` are answered
here; the others go to the app's handler as their pydantic model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from terminal import __version__
from terminal.clock import clock_synced, now_iso
from terminal.envelope import dumps
from terminal.outbox import Outbox
from terminal.payloads import (
    COMMANDS,
    Command,
    PayloadError,
    Reply,
    ResendCommand,
    parse,
    read_cid,
)

log = logging.getLogger("careterm.commands")

MAX_RESEND = 1_000_000
MAX_ERROR_CHARS = 200

ReplyFn = Callable[[bool, dict[str, Any] | None, str | None], None]
"""`reply(ok, result, error)`: answer the command; the first call counts, later ones are dropped."""
CommandHandler = Callable[[str, Command, ReplyFn], None]
"""The app's commands: (name, validated model, reply). Called on the link thread; must not
block: hand the work to the app's core thread and reply from there."""


class DeviceCommands:
    """Reads a command, answers `ping` and `resend`, hands the rest to the app."""

    def __init__(
        self,
        outbox: Outbox,
        send_reply: Callable[[bytes], None],
        *,
        app: CommandHandler | None = None,
        app_commands: tuple[str, ...] = (),
        resend_from: Callable[[int], None],
        session: Callable[[], int],
    ) -> None:
        self.outbox = outbox
        self._send = send_reply
        self._app = app
        self._app_commands = app_commands
        self._resend_from = resend_from
        self._session = session

    def handle(self, name: str, payload: bytes) -> None:
        cid = read_cid(payload)
        reply = self._reply_once(cid, name)
        model = COMMANDS.get(name)
        if model is None:
            known = ", ".join(sorted({"ping", "resend", *self._app_commands}))
            reply(False, None, f"unknown command {name!r} (this device takes {known})")
            return
        try:
            cmd = parse(model, payload)
        except PayloadError as e:
            reply(False, None, f"bad {name} command: {e}")
            return
        if name == "ping":
            reply(True, self._ping(), None)
        elif name == "resend":
            assert isinstance(cmd, ResendCommand)
            self._resend(cmd, reply)
        elif self._app is not None and name in self._app_commands:
            try:
                self._app(name, cmd, reply)
            except Exception as e:
                log.exception("command %s: the app's handler failed", name)
                reply(False, None, f"internal error: {type(e).__name__}")
        else:
            reply(False, None, f"command {name!r} is not supported by this device")

    def _reply_once(self, cid: str | None, name: str) -> ReplyFn:
        lock = threading.Lock()
        done = False

        def reply(ok: bool, result: dict[str, Any] | None = None, error: str | None = None) -> None:
            nonlocal done
            with lock:
                if done:
                    log.warning("command %s (cid %s): a second reply was dropped", name, cid)
                    return
                done = True
            if cid is None:
                log.warning(
                    "command %s without a readable cid not answered (%s)",
                    name,
                    "ok" if ok else error,
                )
                return
            self._send(reply_payload(cid, ok, result, error))

        return reply

    def _ping(self) -> dict[str, Any]:
        st = self.outbox.stats()
        return {
            "pong": True,
            "ts": now_iso(),
            "version": __version__,
            "session": self._session(),
            "epoch": st.epoch,
            "last_seq": st.last_seq,
            "outbox_depth": st.waiting,
            "clock_synced": clock_synced(),
        }

    def _resend(self, cmd: ResendCommand, reply: ReplyFn) -> None:
        first, last = cmd.first, cmd.last
        epoch = self.outbox.epoch
        if cmd.epoch is not None and cmd.epoch != epoch:
            reply(False, None, f"epoch {cmd.epoch} is not this outbox's epoch ({epoch})")
            return
        if last - first >= MAX_RESEND:
            reply(False, None, f"resend range too large (at most {MAX_RESEND:,} events)")
            return
        found = self.outbox.mark_waiting(first, last)
        self._resend_from(first)
        missing = missing_ranges(first, last, found)
        log.info(
            "resend %d..%d: %d stored, %d ranges no longer stored",
            first,
            last,
            len(found),
            len(missing),
        )
        reply(
            True,
            {"from": first, "to": last, "epoch": epoch, "count": len(found), "missing": missing},
            None,
        )


def reply_payload(cid: str, ok: bool, result: dict[str, Any] | None, error: str | None) -> bytes:
    """`{"cid","ok":true,"result"}` or `{"cid","ok":false,"error"}` (terminal.payloads.Reply)."""
    if ok:
        body = Reply(cid=cid, ok=True, result=result or {})
    else:
        text = (error or "failed").replace("\n", " ")
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 1] + "…"
        body = Reply(cid=cid, ok=False, error=text)
    return dumps(body.model_dump(exclude_none=True))


def missing_ranges(first: int, last: int, found: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    expect = first
    for s in found:
        if s > expect:
            out.append([expect, s - 1])
        expect = s + 1
    if expect <= last:
        out.append([expect, last])
    return out
