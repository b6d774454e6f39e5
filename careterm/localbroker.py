"""A private mosquitto on a free local port: for `careterm demo`, the tests and the benchmarks.

The broker runs as a child process the owner can kill (SIGKILL) and restart on the same port,
which is how fault tests take the broker away from a device.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    pred: Callable[[], Any], timeout: float = 30.0, every: float = 0.02, what: str = "condition"
) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Broker:
    """A real mosquitto the test owns: it can be killed and restarted on the same port."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistence: bool = False,
        extra_conf: str = "",
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            "max_queued_messages 100000",
            f"log_dest file {self.dir}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        self.conf.write_text("\n".join(lines) + "\n" + self.extra_conf)

    def start(self) -> Broker:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.write_conf()
        # What mosquitto says before its log file is open (a port in use, a bad option) goes
        # to its stderr: keep it, so a failed start can say why.
        with open(self.dir / "mosquitto.out", "wb") as out:
            self.proc = subprocess.Popen(
                [exe, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_for(self._accepting, 10, what=f"mosquitto on port {self.port}")
        return self

    def _accepting(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            said = []
            for name in ("mosquitto.out", "mosquitto.log"):
                with contextlib.suppress(OSError):
                    said += (self.dir / name).read_text(errors="replace").strip().splitlines()
            why = " | ".join(said[-5:]) if said else "no message"
            raise RuntimeError(
                f"mosquitto exited with status {self.proc.returncode} on port {self.port}: {why}"
            )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()
