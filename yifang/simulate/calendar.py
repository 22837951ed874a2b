"""Dates that change how cases reach a doctor and a card: weekends and the Spring Festival.

The Spring Festival (春节) holiday runs from New Year's Eve (除夕) for a week; outpatient
clinics see far fewer patients and many diagnoses wait until after it. Lunar New Year's
day for each Gregorian year is listed below (from the published Chinese calendar; a year
outside the table falls back to 5 February, the table's typical date, with a warning).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

LUNAR_NEW_YEAR: dict[int, date] = {
    2005: date(2005, 2, 9), 2006: date(2006, 1, 29), 2007: date(2007, 2, 18),
    2008: date(2008, 2, 7), 2009: date(2009, 1, 26), 2010: date(2010, 2, 14),
    2011: date(2011, 2, 3), 2012: date(2012, 1, 23), 2013: date(2013, 2, 10),
    2014: date(2014, 1, 31), 2015: date(2015, 2, 19), 2016: date(2016, 2, 8),
    2017: date(2017, 1, 28), 2018: date(2018, 2, 16), 2019: date(2019, 2, 5),
    2020: date(2020, 1, 25), 2021: date(2021, 2, 12), 2022: date(2022, 2, 1),
    2023: date(2023, 1, 22), 2024: date(2024, 2, 10), 2025: date(2025, 1, 29),
    2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
    2029: date(2029, 2, 13), 2030: date(2030, 2, 3), 2031: date(2031, 1, 23),
    2032: date(2032, 2, 11), 2033: date(2033, 1, 31), 2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}  # fmt: skip


def lunar_new_year(year: int) -> date:
    """Lunar New Year's day (正月初一) of ``year``."""
    if year not in LUNAR_NEW_YEAR:
        log.warning("no Spring Festival date for %s; assuming 5 February", year)
        return date(year, 2, 5)
    return LUNAR_NEW_YEAR[year]


def spring_festival_mask(start: date, n_days: int, days_after: int = 6) -> NDArray[np.bool_]:
    """True on the holiday days (除夕 .. 初一 + ``days_after``) of days ``start + i``."""
    mask = np.zeros(n_days, dtype=bool)
    end = start + timedelta(days=n_days - 1)
    for year in range(start.year, end.year + 1):
        ny = lunar_new_year(year)
        first = (ny - timedelta(days=1) - start).days
        last = (ny + timedelta(days=days_after) - start).days
        lo, hi = max(first, 0), min(last, n_days - 1)
        if lo <= hi:
            mask[lo : hi + 1] = True
    return mask


def weekday_index(start: date, n_days: int) -> NDArray[np.int64]:
    """Day of week (Monday 0 .. Sunday 6) of days ``start + i``."""
    return (np.arange(n_days, dtype=np.int64) + start.weekday()) % 7


def day_of_year(start: date, n_days: int) -> NDArray[np.float64]:
    """0-based day of the year of days ``start + i``."""
    first = (start - date(start.year, 1, 1)).days
    out = np.empty(n_days, dtype=np.float64)
    i = 0
    year = start.year
    doy = first
    while i < n_days:
        year_len = 366 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 365
        take = min(year_len - doy, n_days - i)
        out[i : i + take] = np.arange(doy, doy + take)
        i += take
        year += 1
        doy = 0
    return out


def decimal_year(start: date, n_days: int) -> NDArray[np.float64]:
    """Year as a decimal (2023.0 = 1 January 2023) of days ``start + i``, at mid-day."""
    doy = day_of_year(start, n_days)
    years = np.array([(start + timedelta(days=int(i))).year for i in range(0, n_days, 1)])
    return years + (doy + 0.5) / 365.25
