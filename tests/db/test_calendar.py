from datetime import UTC, date, datetime, timedelta

import pytest

from db.calendar import exchange_time


def utc(*a):
    return datetime(*a, tzinfo=UTC)


def test_regular_session_open_and_close(calendar):
    s = calendar.session_on(date(2024, 1, 31))
    assert s.open == utc(2024, 1, 31, 14, 30) and s.close == utc(2024, 1, 31, 21, 0)
    assert len(s.minutes()) == 390 and not s.is_early_close
    assert calendar.is_open(utc(2024, 1, 31, 14, 30))
    assert calendar.is_open(utc(2024, 1, 31, 20, 59))
    assert not calendar.is_open(utc(2024, 1, 31, 21, 0))
    assert not calendar.is_open(utc(2024, 1, 31, 14, 29))


def test_early_close_day_after_thanksgiving(calendar):
    s = calendar.session_on(date(2024, 11, 29))
    assert s.is_early_close
    assert exchange_time(s.close).hour == 13
    assert len(s.minutes()) == 210
    assert not calendar.is_open(utc(2024, 11, 29, 18, 30))


@pytest.mark.parametrize("day", [date(2024, 12, 25), date(2024, 7, 4), date(2024, 11, 28),
                                 date(2025, 1, 9), date(2024, 2, 3)])
def test_holidays_and_weekends_are_closed(calendar, day):
    assert calendar.session_on(day) is None
    assert not calendar.is_open(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=16))


def test_dst_moves_the_utc_open(calendar):
    # US DST began 2024-03-10: the open moves from 14:30 UTC to 13:30 UTC.
    assert calendar.session_on(date(2024, 3, 8)).open == utc(2024, 3, 8, 14, 30)
    assert calendar.session_on(date(2024, 3, 11)).open == utc(2024, 3, 11, 13, 30)
    # ...and back on 2024-11-03.
    assert calendar.session_on(date(2024, 11, 1)).open == utc(2024, 11, 1, 13, 30)
    assert calendar.session_on(date(2024, 11, 4)).open == utc(2024, 11, 4, 14, 30)
    assert exchange_time(calendar.session_on(date(2024, 11, 4)).open).hour == 9


def test_next_open_and_close_across_a_holiday_weekend(calendar):
    friday_evening = utc(2024, 12, 20, 22, 0)
    assert calendar.next_open(friday_evening) == utc(2024, 12, 23, 14, 30)
    christmas_eve_close = calendar.next_close(utc(2024, 12, 24, 15, 0))
    assert exchange_time(christmas_eve_close).hour == 13
    assert calendar.next_open(utc(2024, 12, 24, 19, 0)) == utc(2024, 12, 26, 14, 30)
    s = calendar.current_or_next_session(utc(2024, 12, 25, 12, 0))
    assert s.day == date(2024, 12, 26)


def test_previous_sessions_and_minutes_between(calendar):
    prev = calendar.sessions_before(utc(2024, 12, 26, 12, 0), 3)
    assert [s.day for s in prev] == [date(2024, 12, 20), date(2024, 12, 23), date(2024, 12, 24)]
    mins = calendar.minutes_between(utc(2024, 12, 24, 17, 55), utc(2024, 12, 26, 14, 33))
    assert mins[0] == utc(2024, 12, 24, 17, 55) and mins[4] == utc(2024, 12, 24, 17, 59)
    assert mins[5:] == [utc(2024, 12, 26, 14, 30), utc(2024, 12, 26, 14, 31), utc(2024, 12, 26, 14, 32)]


def test_naive_datetime_is_refused(calendar):
    with pytest.raises(ValueError, match="no timezone"):
        calendar.is_open(datetime(2024, 1, 31, 15, 0))


def test_outside_calendar_range_is_a_clear_error(calendar):
    with pytest.raises(ValueError, match="outside the calendar's range"):
        calendar.next_open(utc(2090, 1, 1))
