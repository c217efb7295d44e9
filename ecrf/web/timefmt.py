"""Showing stored UTC times to people: ISO 8601 in the site's zone, with the zone named."""
import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def local_time(value, zone="UTC"):
    """``2026-11-23 19:04 CET (Europe/Copenhagen)`` for an aware UTC datetime; '' for None."""
    if value is None:
        return ""
    try:
        tz = ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = dt.timezone.utc, "UTC"
    local = value.astimezone(tz)
    name = local.tzname() or zone
    suffix = name if name == zone or zone == "UTC" else f"{name} ({zone})"
    return f"{local:%Y-%m-%d %H:%M} {suffix}"


def init_app(app):
    app.add_template_filter(local_time, "localtime")
