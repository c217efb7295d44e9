"""Stored UTC times are shown in the site's zone, with the zone named."""
import datetime as dt

from ecrf.web.timefmt import local_time

WINTER = dt.datetime(2026, 1, 15, 12, 30, tzinfo=dt.timezone.utc)
SUMMER = dt.datetime(2026, 7, 15, 12, 30, tzinfo=dt.timezone.utc)


def test_local_time_names_the_zone_and_follows_daylight_saving():
    assert local_time(WINTER) == "2026-01-15 12:30 UTC"
    assert local_time(WINTER, "Europe/Copenhagen") == "2026-01-15 13:30 CET (Europe/Copenhagen)"
    assert local_time(SUMMER, "Europe/Copenhagen") == "2026-07-15 14:30 CEST (Europe/Copenhagen)"
    assert local_time(WINTER, "Asia/Shanghai") == "2026-01-15 20:30 CST (Asia/Shanghai)"


def test_unknown_zones_fall_back_to_utc_and_none_is_empty():
    assert local_time(WINTER, "Mars/Olympus") == "2026-01-15 12:30 UTC"
    assert local_time(None) == ""
