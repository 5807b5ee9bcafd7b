"""Cron schedules that set replica floors, evaluated in their own time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from inference_operator.scaling.model import Schedule


def schedule_active(schedule: Schedule, now: float, lead_seconds: float = 0.0) -> bool:
    """True while a fire time t satisfies t - lead <= now < t + duration.

    `lead_seconds` (the replica start-up time) makes the floor start early, so the capacity is
    Ready when the scheduled window opens rather than starting then.
    """
    tz = ZoneInfo(schedule.timezone)
    at = datetime.fromtimestamp(now + lead_seconds, tz)
    previous: datetime = croniter(schedule.cron, at).get_prev(datetime)
    return at - previous < timedelta(seconds=schedule.duration_seconds + lead_seconds)


def schedule_floor(schedules: tuple[Schedule, ...], now: float, lead_seconds: float) -> int:
    return max(
        (s.min_replicas for s in schedules if schedule_active(s, now, lead_seconds)), default=0
    )
