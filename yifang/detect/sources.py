"""Series of the other surveillance data for the engine: syndrome counts and streams.

The hospital front end counts syndromes per hospital, township and day
(``hospital_syndrome_count``) and keeps the other streams — school absenteeism, pharmacy
sales, ILI%, respiratory multiplex positivity, livestock serology — as observations per
place and day (``hospital_stream_observation``). The engine watches them as series of their
own, beside the report cards:

* :class:`SyndromeSource` — one series per syndrome and region at the rule's level: the
  encounters classified into the syndrome per day (``measure: count``), or their share of
  all encounters in per cent (``measure: share``). A syndrome row whose patient township is
  unknown counts in the hospital's own region (so in county and city series only).
* :class:`StreamSource` — one series per stream and region: the values summed over the
  places of the region (``measure: count``), or Σ value / Σ denominator in per cent
  (``measure: rate``: ILI%, absenteeism, positivity). A period without any observation of
  the series is missing (NaN), not zero: schools are closed at weekends, livestock are
  sampled twice a month (rules with ``skip_missing`` leave such periods out).

Which series exist, their labels and measures are data (``data/sources.yaml``). The tables
belong to :mod:`yifang.hospital`, which this package may not import (detection stands below
the side capabilities), so they are read by name through SQLAlchemy's lightweight
``table()``/``column()`` constructs; a database without them simply has no such series.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Date, DateTime, Float, Integer, String, case, column, func, inspect, table
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, TableClause

from yifang.catalog.models import Organisation
from yifang.detect.config import LEVEL_DIGITS, Rule, SourcesConfig, load_sources
from yifang.detect.engine import (
    SeriesBatch,
    SeriesBlock,
    Touched,
    _chunks,
    _period_ends,
    _window,
    touched_keys,
)

SYNDROME_TABLE: TableClause = table(
    "hospital_syndrome_count",
    column("syndrome", String),
    column("org_code", String),
    column("township", String),
    column("day", Date),
    column("count", Integer),
    column("visits", Integer),
    column("updated_at", DateTime),
)
STREAM_TABLE: TableClause = table(
    "hospital_stream_observation",
    column("stream", String),
    column("region_code", String),
    column("place", String),
    column("day", Date),
    column("value", Float),
    column("denominator", Float),
    column("updated_at", DateTime),
)


# ---------------------------------------------------------------------------------------
# Batches of numerators and denominators
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatioBatch:
    """Some series as sparse cells: cell k adds ``num[k]`` (and ``den[k]``) to series
    ``s[k]`` in period ``t[k]``.

    ``measure`` ``count`` gives Σ num, ``share``/``rate`` 100 · Σ num / Σ den (missing where
    Σ den is 0). With ``missing_as_zero`` a period without a cell is 0 (syndrome counts: no
    row, no visit), otherwise missing.
    """

    keys: list[tuple[str, str]]
    t: NDArray[np.int64]
    s: NDArray[np.int64]
    num: NDArray[np.float64]
    den: NDArray[np.float64]
    period_end: list[date]
    measure: tuple[str, ...]  # per series
    missing_as_zero: bool

    def load(self) -> SeriesBlock:
        T, S = len(self.period_end), len(self.keys)
        num = np.zeros((T, S))
        den = np.zeros((T, S))
        seen = np.zeros((T, S), dtype=bool)
        np.add.at(num, (self.t, self.s), self.num)
        np.add.at(den, (self.t, self.s), self.den)
        seen[self.t, self.s] = True
        ratio = np.array([m in ("share", "rate") for m in self.measure], dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(den > 0, 100.0 * num / den, np.nan)
        x = np.where(ratio[None, :], rate, num)
        if not self.missing_as_zero:
            x = np.where(seen, x, np.nan)
        return SeriesBlock(keys=list(self.keys), period_end=list(self.period_end), counts=x)


def _batches(
    rows: list[tuple[str, str, date, float, float]],
    *,
    as_of: date,
    period: int,
    n_periods: int,
    batch_size: int,
    measure_of: Mapping[str, str],
    missing_as_zero: bool,
    wanted: set[tuple[str, str]] | None,
) -> list[SeriesBatch]:
    """Rows (code, region, day, num, den) into batches of at most ``batch_size`` series,
    keys sorted; series without a positive value in the window are left out (they cannot
    alarm)."""
    index: dict[tuple[str, str], int] = {}
    ts: list[int] = []
    ss: list[int] = []
    nums: list[float] = []
    dens: list[float] = []
    for code, region, day, n, d in rows:
        t = n_periods - 1 - (as_of - day).days // period
        key = (code, region)
        if not 0 <= t < n_periods or (wanted is not None and key not in wanted):
            continue
        ts.append(t)
        ss.append(index.setdefault(key, len(index)))
        nums.append(float(n or 0.0))
        dens.append(float(d or 0.0))
    t_arr = np.asarray(ts, dtype=np.int64)
    s_arr = np.asarray(ss, dtype=np.int64)
    n_arr = np.asarray(nums, dtype=np.float64)
    d_arr = np.asarray(dens, dtype=np.float64)
    positive = np.zeros(len(index), dtype=bool)
    positive[s_arr[n_arr > 0]] = True
    keys = sorted(k for k, i in index.items() if positive[i])
    period_end = _period_ends(as_of, period, n_periods)
    out: list[SeriesBatch] = []
    for lo, hi in _chunks(len(keys), batch_size):
        members = keys[lo:hi]
        local = np.full(len(index), -1, dtype=np.int64)
        for j, key in enumerate(members):
            local[index[key]] = j
        pick = local[s_arr] >= 0
        out.append(
            RatioBatch(
                keys=members,
                t=t_arr[pick],
                s=local[s_arr[pick]],
                num=n_arr[pick],
                den=d_arr[pick],
                period_end=period_end,
                measure=tuple(measure_of.get(code, "count") for code, _ in members),
                missing_as_zero=missing_as_zero,
            )
        )
    return out


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _has_table(session: Session, name: str) -> bool:
    """Whether the table exists (checked first: a failed statement would abort a
    PostgreSQL transaction)."""
    return bool(inspect(session.connection()).has_table(name))


# ---------------------------------------------------------------------------------------
# Syndromes
# ---------------------------------------------------------------------------------------


@dataclass
class SyndromeSource:
    """Syndrome series from ``hospital_syndrome_count`` (see the module docstring)."""

    session: Session
    config: SourcesConfig = field(default_factory=load_sources)
    name: str = "syndrome"

    def supports(self, rule: Rule) -> bool:
        return rule.level in LEVEL_DIGITS and _has_table(self.session, SYNDROME_TABLE.name)

    def codes(self) -> list[str]:
        """The syndromes with counts in the table."""
        if not _has_table(self.session, SYNDROME_TABLE.name):
            return []
        c = SYNDROME_TABLE.c
        return sorted(str(x) for x in self.session.scalars(func.distinct(c.syndrome).select()))

    def _region(self) -> ColumnElement[Any]:
        c = SYNDROME_TABLE.c
        return case((c.township != "", c.township), else_=Organisation.region_code)

    def batches(
        self,
        rule: Rule,
        disease_codes: Collection[str],
        *,
        as_of: date,
        history_days: int,
        batch_size: int,
        touched: Touched | None = None,
    ) -> list[SeriesBatch]:
        period, n_periods, start = _window(as_of, rule.granularity, history_days)
        digits = LEVEL_DIGITS[rule.level]
        c = SYNDROME_TABLE.c
        full = self._region()
        region = func.substr(full, 1, digits)
        stmt = (
            SYNDROME_TABLE.outerjoin(Organisation, Organisation.code == c.org_code)
            .select()
            .with_only_columns(c.syndrome, region, c.day, func.sum(c.count), func.sum(c.visits))
            .where(
                c.syndrome.in_(sorted(disease_codes)),
                c.day >= start,
                c.day <= as_of,
                func.length(full) >= digits,
            )
            .group_by(c.syndrome, region, c.day)
        )
        rows = [
            (str(code), str(r), _as_date(d), float(n or 0), float(v or 0))
            for code, r, d, n, v in self.session.execute(stmt)
        ]
        measure = {code: self.config.info(self.name, code).measure for code in disease_codes}
        return _batches(
            rows,
            as_of=as_of,
            period=period,
            n_periods=n_periods,
            batch_size=batch_size,
            measure_of=measure,
            missing_as_zero=True,
            wanted=None if touched is None else touched_keys(touched, rule.level),
        )

    def touched_since(self, since: datetime) -> Touched:
        """(syndrome, township or the hospital's region) of the counts changed since."""
        if not _has_table(self.session, SYNDROME_TABLE.name):
            return set()
        c = SYNDROME_TABLE.c
        stmt = (
            SYNDROME_TABLE.outerjoin(Organisation, Organisation.code == c.org_code)
            .select()
            .with_only_columns(c.syndrome, self._region())
            .where(c.updated_at >= since)
            .distinct()
        )
        return {(str(s), str(r)) for s, r in self.session.execute(stmt) if r}


# ---------------------------------------------------------------------------------------
# Other streams
# ---------------------------------------------------------------------------------------


@dataclass
class StreamSource:
    """Stream series from ``hospital_stream_observation`` (see the module docstring)."""

    session: Session
    config: SourcesConfig = field(default_factory=load_sources)
    name: str = "stream"

    def supports(self, rule: Rule) -> bool:
        return rule.level in LEVEL_DIGITS and _has_table(self.session, STREAM_TABLE.name)

    def codes(self) -> list[str]:
        """The streams with observations in the table."""
        if not _has_table(self.session, STREAM_TABLE.name):
            return []
        c = STREAM_TABLE.c
        return sorted(str(x) for x in self.session.scalars(func.distinct(c.stream).select()))

    def batches(
        self,
        rule: Rule,
        disease_codes: Collection[str],
        *,
        as_of: date,
        history_days: int,
        batch_size: int,
        touched: Touched | None = None,
    ) -> list[SeriesBatch]:
        period, n_periods, start = _window(as_of, rule.granularity, history_days)
        digits = LEVEL_DIGITS[rule.level]
        c = STREAM_TABLE.c
        region = func.substr(c.region_code, 1, digits)
        stmt = (
            STREAM_TABLE.select()
            .with_only_columns(c.stream, region, c.day, func.sum(c.value), func.sum(c.denominator))
            .where(
                c.stream.in_(sorted(disease_codes)),
                c.day >= start,
                c.day <= as_of,
                func.length(c.region_code) >= digits,
            )
            .group_by(c.stream, region, c.day)
        )
        rows = [
            (str(code), str(r), _as_date(d), float(n or 0), float(v or 0))
            for code, r, d, n, v in self.session.execute(stmt)
        ]
        measure = {code: self.config.info(self.name, code).measure for code in disease_codes}
        return _batches(
            rows,
            as_of=as_of,
            period=period,
            n_periods=n_periods,
            batch_size=batch_size,
            measure_of=measure,
            missing_as_zero=False,
            wanted=None if touched is None else touched_keys(touched, rule.level),
        )

    def touched_since(self, since: datetime) -> Touched:
        """(stream, region) of the observations changed since ``since``."""
        if not _has_table(self.session, STREAM_TABLE.name):
            return set()
        c = STREAM_TABLE.c
        stmt = (
            STREAM_TABLE.select()
            .with_only_columns(c.stream, c.region_code)
            .where(c.updated_at >= since)
            .distinct()
        )
        return {(str(s), str(r)) for s, r in self.session.execute(stmt)}


def default_sources(session: Session) -> dict[str, Any]:
    """The syndrome and stream sources over ``session``'s database."""
    config = load_sources()
    return {
        "syndrome": SyndromeSource(session, config),
        "stream": StreamSource(session, config),
    }
