"""Builds the speaker: the real player, the simulated one (`careterm demo`), or none."""

from __future__ import annotations

import logging
import os

from drivers.speaker.base import Speaker

log = logging.getLogger("careterm.drivers.speaker")

SPEAKER_ENV = "CARETERM_SPEAKER"
"""`player` (default), `sim` or `none`: how `careterm demo` picks the speaker of its children."""
DRIVERS = ("player", "sim", "none")


def open_speaker(
    driver: str | None = None, *, volume: float = 1.0, player: list[str] | None = None
) -> Speaker | None:
    """The speaker for voice prompts, or None for `none`.

    `driver` None means `$CARETERM_SPEAKER`, else `player`. `player` is the command line of
    the audio player (None: `$CARETERM_AUDIO_PLAYER` or the first of aplay, paplay, pw-play).
    """
    if driver is None:
        driver = os.environ.get(SPEAKER_ENV, "").strip() or "player"
        if driver not in DRIVERS:
            log.warning(
                "speaker: $%s=%r is not one of %s; using the real player",
                SPEAKER_ENV,
                driver,
                ", ".join(DRIVERS),
            )
            driver = "player"
    if driver == "none":
        return None
    # Imported when chosen (the player brings subprocess and wave): start-up on a Pi.
    if driver == "sim":
        from drivers.speaker.sim import SimulatedSpeaker

        return SimulatedSpeaker(volume)
    if driver == "player":
        from drivers.speaker.player import PlayerSpeaker

        return PlayerSpeaker(player, volume)
    raise ValueError(f"unknown speaker driver {driver!r}; one of {', '.join(DRIVERS)}")
