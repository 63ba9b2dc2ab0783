"""Clinical time: every instant is timezone-aware; naive input means local hospital time.

ARCHITECTURE: clinical times are timezone-aware, Asia/Shanghai by default. A naive ``2024-03-01 08:00``
typed by a ward nurse means Shanghai time, not UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from medfusion.settings import get_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def display_zone() -> ZoneInfo:
    """The zone times are shown in on pages, in the CLI and in API documentation (``MEDFUSION_TIMEZONE``,
    Asia/Shanghai by default); times are stored in UTC."""
    return _zone(get_settings().timezone)


def format_local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``value`` (stored in UTC) in the display zone with the zone's abbreviation, e.g. ``2026-12-01 16:00
    CST`` — the one way pages (the ``local`` filter), the CLI and exports show a time. Naive means UTC."""
    if value is None:
        return ""
    zone = display_zone()
    shown = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
    return f"{shown.strftime(fmt)} {shown.tzname() or zone.key}"


def aware(value: datetime, tz: ZoneInfo = SHANGHAI) -> datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def today_local() -> date:
    return datetime.now(SHANGHAI).date()


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


_UNKNOWN = datetime.min.replace(tzinfo=UTC)


def sort_time(value: datetime | None) -> datetime:
    """A sort key for a clinical time that may be unknown (R4 lets it be absent): unknown sorts first
    (oldest), so "newest first" lists show it last."""
    return value if value is not None else _UNKNOWN
