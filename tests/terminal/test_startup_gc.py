"""The cycle collector is off while a device starts and back on (its start-up heap frozen) after;
a command that ends early gets it back as it was."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from terminal import startup_gc


@pytest.fixture(autouse=True)
def _collector_back() -> Iterator[None]:
    yield
    startup_gc.resume()
    gc.unfreeze()
    gc.enable()


def test_paused_until_started_then_frozen_and_on() -> None:
    startup_gc.pause()
    assert not gc.isenabled()
    startup_gc.pause()  # twice: still one pause
    startup_gc.started()
    assert gc.isenabled() and gc.get_freeze_count() > 0
    startup_gc.started()  # once only
    assert gc.isenabled()


def test_resume_turns_it_on_without_freezing() -> None:
    startup_gc.pause()
    startup_gc.resume()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_it_comes_back_by_itself_at_the_latest() -> None:
    startup_gc.pause(max_s=0.05)
    end = time.monotonic() + 20  # (the collection before it walks this whole test process)
    while not gc.isenabled() and time.monotonic() < end:
        time.sleep(0.05)
    assert gc.isenabled()


def test_nothing_happens_when_it_was_off_already() -> None:
    gc.disable()
    startup_gc.pause()
    startup_gc.started()
    assert not gc.isenabled() and gc.get_freeze_count() == 0
