"""Reports on `<base>/gpio/status`: their JSON, and how a flood of them is thinned out.

The throttle runs on an explicit clock here, so no test waits for a second to pass.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from mqtt_gpio_bridge.core.reports import REPORTS_PER_SECOND, ReportThrottle, report_json

STAMP = datetime(2026, 12, 1, 23, 5, 9, 123456, tzinfo=UTC)
SUPPRESSED = "earlier reports suppressed: too many per second"


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def throttle(limit: int, clock: FakeClock) -> ReportThrottle:
    return ReportThrottle(limit, clock=clock, wall_clock=lambda: STAMP)


def test_a_report_is_the_documented_json_with_a_utc_millisecond_stamp() -> None:
    report = json.loads(report_json("pin 4 is an input", "command", 4, when=STAMP))

    assert report == {
        "source": "command",
        "error": "pin 4 is an input",
        "pin": 4,
        "time": "2026-12-01T23:05:09.123Z",
    }


def test_a_stamp_in_another_zone_is_given_in_utc_and_a_missing_pin_is_null() -> None:
    paris = timezone(timedelta(hours=1))
    when = datetime(2026, 12, 2, 0, 5, 9, 7000, tzinfo=paris)

    report = json.loads(report_json("MALOS is not answering", "malos", None, when=when))

    assert report["time"] == "2026-12-01T23:05:09.007Z"
    assert report["pin"] is None


def test_the_throttle_stamps_each_report_with_its_wall_clock() -> None:
    report = throttle(3, FakeClock()).admit("bad payload 'x'", "command", 2)

    assert report is not None
    assert json.loads(report) == {
        "source": "command",
        "error": "bad payload 'x'",
        "pin": 2,
        "time": "2026-12-01T23:05:09.123Z",
    }


def test_at_most_limit_reports_pass_within_one_second() -> None:
    clock = FakeClock()
    reports = throttle(3, clock)

    passed = []
    for index in range(10):
        clock.now = 1000.0 + index * 0.099  # ten reports in 0.891 s
        passed.append(reports.admit(f"report {index}", "command", 0))

    assert [json.loads(r)["error"] for r in passed if r is not None] == [
        "report 0",
        "report 1",
        "report 2",
    ]


def test_the_next_report_says_how_many_were_suppressed_then_the_count_starts_again() -> None:
    clock = FakeClock()
    reports = throttle(2, clock)
    for index in range(7):  # 2 pass, 5 are suppressed
        reports.admit(f"flood {index}", "command", 1)

    clock.now = 1000.999
    assert reports.admit("still the same second", "command", 1) is None  # the 6th suppressed
    clock.now = 1001.0
    first = reports.admit("a second later", "command", 1)
    second = reports.admit("and another", "command", 1)

    assert first is not None and second is not None
    assert json.loads(first)["error"] == f"a second later (6 {SUPPRESSED})"
    assert json.loads(second)["error"] == "and another"


def test_a_long_flood_lets_through_the_limit_in_every_second_and_no_more() -> None:
    clock = FakeClock(0.0)
    reports = throttle(REPORTS_PER_SECOND, clock)

    passed_per_second = [0] * 10
    for millisecond in range(10_000):  # 1,000 reports a second for 10 s
        clock.now = millisecond / 1000
        if reports.admit("bad", "command", 0) is not None:
            passed_per_second[millisecond // 1000] += 1

    assert passed_per_second == [REPORTS_PER_SECOND] * 10


def test_reports_below_the_limit_all_pass_without_a_suppressed_note() -> None:
    clock = FakeClock()
    reports = throttle(3, clock)

    passed = []
    for index in range(12):  # 2 a second, for 6 s
        clock.now = 1000.0 + index * 0.5
        passed.append(reports.admit(f"report {index}", "command", None))

    assert all(report is not None for report in passed)
    assert not any(SUPPRESSED in report for report in passed if report is not None)
