"""Meeting times: entered and shown in Europe/Stockholm, stored in UTC, DST-safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TIMEZONE = "Europe/Stockholm"


class NonexistentTime(ValueError):
    """A local time skipped by the spring change to summer time (02:00–03:00 on the last Sunday of March)."""


def from_input(value: datetime) -> datetime:
    """A client's time as an aware UTC instant: naive means Stockholm wall time."""
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    local = value.replace(tzinfo=STOCKHOLM)
    # A wall time in the spring gap does not survive a round trip through UTC.
    if local.astimezone(UTC).astimezone(STOCKHOLM).replace(tzinfo=None) != value:
        raise NonexistentTime(f"{value:%Y-%m-%d %H:%M} does not exist in Stockholm (summer time starts)")
    return local.astimezone(UTC)


def local(value: datetime) -> datetime:
    """For answers: the instant with Stockholm's offset of that date (+01:00 or +02:00)."""
    return value.astimezone(STOCKHOLM)


def same_wall_time_later(value: datetime, *, years: int = 0, days: int = 0) -> datetime:
    """The same Stockholm wall time some years or days on (not the same number of hours: a
    meeting at 18:00 in March is proposed at 18:00, whatever summer time did meanwhile)."""
    wall = value.astimezone(STOCKHOLM).replace(tzinfo=None)
    try:
        wall = wall.replace(year=wall.year + years)
    except ValueError:  # 29 February
        wall = wall.replace(year=wall.year + years, day=28)
    wall += timedelta(days=days)
    return wall.replace(tzinfo=STOCKHOLM).astimezone(UTC)
