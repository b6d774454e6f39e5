"""Driver test fixtures: a site salt, configs, a classifier, and a pty behind a by-id style symlink."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.card_reader.classify import Classifier, compile_rules
from drivers.card_reader.sim import SamModule
from terminal.config import DEFAULT_CLASSIFY, parse_config

SALT = b"site-secret-for-tests"


@pytest.fixture
def salt_file(tmp_path: Path) -> Path:
    p = tmp_path / "site.salt"
    p.write_bytes(b"  " + SALT + b"\n")  # surrounding white space is not part of the salt
    return p


@pytest.fixture
def classifier() -> Classifier:
    return Classifier(compile_rules(DEFAULT_CLASSIFY), SALT)


@pytest.fixture
def make_cfg(tmp_path: Path, salt_file: Path) -> Callable[..., Any]:
    def make(role: str = "kiosk", **sections: dict[str, Any]) -> Any:
        data: dict[str, Any] = {
            "device": {
                "id": "kiosk-t1",
                "role": role,
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "privacy": {"salt_file": str(salt_file)},
        }
        data.update(sections)
        return parse_config(data, tmp_path / "device.toml")

    return make


class PluggedPty:
    """A pty reached through a stable symlink (like /dev/serial/by-id/...); unplug and replug."""

    def __init__(self, link: Path, pty_factory: Callable[[], Any]) -> None:
        self.link = link
        self._factory = pty_factory
        self.pty: Any = None
        self.plug()

    @property
    def path(self) -> str:
        return str(self.link)

    def plug(self) -> None:
        self.pty = self._factory()
        tmp = self.link.with_suffix(".new")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(self.pty.path, tmp)
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        self.pty.close()
        self.link.unlink()

    def write(self, data: bytes) -> None:
        self.pty.write(data)

    def read(self, n: int = 4096, timeout: float = 1.0) -> bytes:
        return self.pty.read(n, timeout)

    def close(self) -> None:
        self.pty.close()


@pytest.fixture
def plugged_pty(tmp_path: Path) -> Iterator[Callable[[str], PluggedPty]]:
    from tests.conftest import Pty

    made: list[PluggedPty] = []
    (tmp_path / "by-id").mkdir(exist_ok=True)

    def make(name: str = "usb-Vendor_Reader_0001-if00-port0") -> PluggedPty:
        p = PluggedPty(tmp_path / "by-id" / name, Pty)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


class SamServer:
    """A `SamModule` answering on a pty master from its own thread (the card reader's hardware)."""

    def __init__(self, module: SamModule, fd: int) -> None:
        self.module = module
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=module.serve, args=(fd, self.stop_event), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(2)


@pytest.fixture
def sam_server() -> Iterator[Callable[[int], SamServer]]:
    made: list[SamServer] = []

    def make(fd: int, module: SamModule | None = None) -> SamServer:
        s = SamServer(module or SamModule(), fd)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class LocalTcpServer:
    """A TCP server on a free local port standing in for a network device; each connection
    accepted goes to `serve` (on the accepting thread: one connection at a time, unless
    `serve` starts a thread of its own)."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        self.srv.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop.set()
        self.srv.close()
