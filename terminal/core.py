"""The core thread of a device service: jobs run one at a time in arrival order, with a tick.

Both apps keep their state on one thread (drivers, the link and the UI only `put` work there),
so the state needs no locks and events are recorded in the order things happened:

    core = CoreLoop("pad-core", tick=lambda: apply(machine.tick(now())), tick_s=0.1)
    core.start()
    core.put(lambda: apply(machine.key("4", t)))      # from any thread
    result = core.call(lambda: machine.state)          # from any thread but the core's
    core.stop(last=lambda: apply(machine.flush(now())))

A job or tick that raises is logged (and `on_error` called) and the loop goes on: one bad input
must not stop the device. `heartbeat` (monotonic time of the last turn) and `handled` (jobs
taken so far) let a watchdog or a test see that the thread is alive and moving.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("careterm.core")

T = TypeVar("T")
Job = Callable[[], object]


class CoreLoop:
    def __init__(
        self,
        name: str,
        *,
        tick: Callable[[], object] | None = None,
        tick_s: float = 0.1,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        self.name = name
        self._tick = tick
        self._tick_s = tick_s
        self._on_error = on_error
        self._inbox: queue.Queue[Job] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.heartbeat = time.monotonic()
        """Monotonic time of the loop's last turn."""
        self.handled = 0
        """Jobs taken off the queue so far."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def put(self, job: Job) -> None:
        """Run `job()` on the core thread, after every job put before it (any thread)."""
        self._inbox.put(job)

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run `fn` on the core thread and return its result (or raise its exception).
        Never from the core thread itself (it would wait for itself)."""
        if self.on_thread():
            return fn()
        done = threading.Event()
        box: list[T] = []
        err: list[BaseException] = []

        def job() -> None:
            try:
                box.append(fn())
            except BaseException as e:
                err.append(e)
            finally:
                done.set()

        self.put(job)
        if not done.wait(timeout):
            raise TimeoutError(f"{self.name} did not answer within {timeout} s")
        if err:
            raise err[0]
        return box[0]

    def stop(self, last: Job | None = None, timeout: float = 3.0) -> None:
        """Run `last` (if given) after the jobs already queued, then end the thread."""

        def final() -> None:
            try:
                if last is not None:
                    last()
            finally:
                self._stop.set()

        if self.is_alive():
            self.put(final)
        else:
            self._stop.set()
        if self._thread is not None and not self.on_thread():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job: Job | None = self._inbox.get(timeout=self._tick_s)
            except queue.Empty:
                job = None
            self.heartbeat = time.monotonic()
            try:
                if job is not None:
                    job()
                if self._tick is not None and not self._stop.is_set():
                    self._tick()
            except Exception as e:
                log.exception("%s: an input could not be handled", self.name)
                if self._on_error is not None:
                    try:
                        self._on_error(e)
                    except Exception:
                        log.exception("%s: the error handler failed too", self.name)
            if job is not None:
                self.handled += 1
