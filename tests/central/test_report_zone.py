"""Every event lands on the day and hour of the report's zone, whatever offset its device
stamped (the report works each stamped date, hour and offset out once: this checks that the
shortcut never differs from converting each time, half-hour zones and DST included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from central.report_model import _Clock

ZONES = ["Asia/Shanghai", "Asia/Kolkata", "Europe/London", "America/St_Johns", "UTC"]
OFFSETS = [timedelta(hours=h, minutes=m) for h in (-5, 0, 1, 8) for m in (0, 30)]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    stamps=st.lists(
        st.tuples(
            st.integers(0, 2 * 365 * 86400),  # seconds into 2026-2027
            st.sampled_from(OFFSETS),
            st.booleans(),  # milliseconds in the stamp, as devices send
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_day_and_hour_in_the_reports_zone(zone: str, stamps: list) -> None:
    z = ZoneInfo(zone)
    clock = _Clock(z, "", "")
    for seconds, offset, ms in stamps:
        t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
        ts = t.astimezone(timezone(offset)).isoformat(timespec="milliseconds" if ms else "auto")
        here = t.astimezone(z)
        assert clock.local("pad", ts, None, None) == (here.date().isoformat(), here.hour), ts


def test_a_stamp_without_an_offset_keeps_the_devices_own_day_and_hour() -> None:
    clock = _Clock(ZoneInfo("Asia/Shanghai"), "", "")
    assert clock.local("pad", "2026-11-23T09:15:00", "2026-11-23", 9) == ("2026-11-23", 9)
    assert clock.local("pad", "", "2026-11-23", 9) == ("2026-11-23", 9)
