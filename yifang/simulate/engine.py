"""One simulation run: endemic cases, injected outbreaks, reporting, and the report cards.

Steps, each drawing from its own child of the run's seed sequence (so adding outbreaks
does not shift the baseline, and the same seed gives the same city):

1. **Baseline.** For every disease, township and day the expected onsets are
   ``pop × rate/10⁵/365.25 × township multiplier × seasonal factor × trend``; the city-wide
   population-weighted multiplier is 1, so the configured rate is the city's rate. Counts
   are negative binomial with the disease's φ (:mod:`yifang.simulate.counts`).
2. **Outbreaks** (:mod:`yifang.simulate.epidemics`): point sources, renewal-equation spread
   in the community, closed-population clusters in a kindergarten or school, and spatial
   excesses over neighbouring townships; each gets a ground-truth record.
3. **Persons**: age from the disease's age bands (or the institution), sex, occupation
   consistent with age and township, name, GB 11643 identity number, address, phone.
4. **Reporting**: onset → diagnosis delay (log-normal per disease), fewer diagnoses on
   weekends and in the Spring Festival week (they move to the next working day), hour of
   diagnosis, diagnosis → entry delay (mostly within the 24 h limit, a share late), the
   reporting hospital (the township's health centre or a county hospital), county review.
   Cases not yet diagnosed and entered by the end of the last day have no card.
5. **Errors**: a configurable share of cards gets one realistic error (bad check
   character, a missing field, an impossible date, a duplicate card, a wrong address code),
   recorded in the ground truth.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from yifang.simulate import people
from yifang.simulate.calendar import (
    day_of_year,
    decimal_year,
    spring_festival_mask,
    weekday_index,
)
from yifang.simulate.city import CityModel, Place
from yifang.simulate.config import CatalogFacts, DiseaseCalibration, OutbreakRule
from yifang.simulate.counts import negative_binomial, seasonal_factor
from yifang.simulate.epidemics import (
    discretised_serial_interval,
    point_source_outbreak,
    renewal_outbreak,
)

if TYPE_CHECKING:
    from yifang.simulate.encounters import Encounters
    from yifang.simulate.streams import StreamSet

log = logging.getLogger(__name__)

UTC_OFFSET = timedelta(hours=8)  # China Standard Time; stored timestamps are naive UTC
ERROR_KINDS = (
    "bad_id_checksum",
    "missing_field",
    "impossible_date",
    "duplicate",
    "wrong_address_code",
)
_VILLAGES = [
    "红星",
    "新华",
    "东升",
    "胜利",
    "团结",
    "和平",
    "光明",
    "前进",
    "永丰",
    "兴旺",
    "五里",
    "双井",
    "新庄",
    "南关",
    "北滩",
    "西沟",
    "古城",
    "新民",
    "丰收",
    "长流",
]
_STREETS = ["鼓楼", "长城", "应理", "中山", "黄河", "沙坡", "新区", "文昌", "迎宾", "平安"]
_SEVERE_TO_COUNTY = {"MEASLES", "BRUC", "ECHINO", "TB_POS", "TB_NEG", "TB_NOLAB", "TB_RR"}


@dataclass
class OutbreakTruth:
    """Ground truth of one injected outbreak (dates are onset dates, local)."""

    id: int
    kind: str
    disease_key: str
    disease_code: str
    region_code: str
    place_name: str | None
    place_kind: str | None
    start: date
    end: date
    extra_cases: int
    townships: list[str]
    rt: float | None = None
    note: str = ""
    card_numbers: list[str] = field(default_factory=list)
    unreported_cases: int = 0


@dataclass
class CardError:
    """A deliberate error on card ``card_number``."""

    card_number: str
    kind: str
    detail: str
    duplicate_of: str | None = None


@dataclass
class SimulationResult:
    """Everything a run produced: the cards, the true cases behind them and the truth."""

    start: date
    end: date
    seed: int
    cards: list[dict[str, Any]]
    outbreaks: list[OutbreakTruth]
    errors: list[CardError]
    cases: dict[str, NDArray[Any]]
    city: CityModel
    diseases: list[DiseaseCalibration]
    expected: dict[str, NDArray[np.float64]]  # disease key -> (townships, days) baseline means
    reporters: list[tuple[str, str, str, str]] = field(default_factory=list)
    streams: StreamSet | None = None  # filled by service.add_streams
    encounters: Encounters | None = None

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1


# ---------------------------------------------------------------------------------------
# 1. baseline
# ---------------------------------------------------------------------------------------


def township_multipliers(
    city: CityModel, dis: DiseaseCalibration, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Relative rates of the townships for one disease, population-weighted mean 1."""
    mult = np.full(city.n, float(dis.multipliers.get("rural", 1.0)))
    mult[city.urban] = float(dis.multipliers.get("urban", 1.0))
    mult[city.herding] = float(dis.multipliers.get("herding", 1.0))
    mult *= np.exp(rng.normal(0.0, 0.25, city.n))  # unexplained spatial differences
    w = city.population / city.population.sum()
    return np.asarray(mult / float((mult * w).sum()), dtype=np.float64)


def expected_baseline(
    city: CityModel,
    dis: DiseaseCalibration,
    start: date,
    n_days: int,
    mult: NDArray[np.float64],
    scale: float = 1.0,
) -> NDArray[np.float64]:
    """Expected daily onsets, shape (townships, days)."""
    doy = day_of_year(start, n_days)
    season = seasonal_factor(doy, dis.harmonics())
    years = decimal_year(start, n_days)
    trend = np.exp(dis.trend * (years - (city.config.reference_year + 0.5)))
    daily = dis.rate / 1e5 / 365.25 * scale
    return (city.population * mult)[:, None] * daily * (season * trend)[None, :]


# ---------------------------------------------------------------------------------------
# 2. outbreaks
# ---------------------------------------------------------------------------------------


@dataclass
class _Injected:
    """Cases of one outbreak before persons are drawn."""

    truth: OutbreakTruth
    disease: int
    township: NDArray[np.int64]
    onset: NDArray[np.int64]
    age_range: tuple[int, int] | None = None
    occupation: str | None = None
    work_unit: str | None = None
    subtype: str | None = None
    place_id: int = -1


def _pick_disease(rng: np.random.Generator, rule: OutbreakRule, keys: dict[str, int]) -> int | None:
    options = [keys[k] for k in rule.diseases if k in keys]
    return int(options[int(rng.integers(len(options)))]) if options else None


def _serial_interval(
    dis_code: str, facts: CatalogFacts, fallback: tuple[float, float]
) -> NDArray[np.float64]:
    f = facts.diseases.get(dis_code)
    mean = f.serial_interval_mean_days if f and f.serial_interval_mean_days else fallback[0]
    sd = f.serial_interval_sd_days if f and f.serial_interval_sd_days else fallback[1]
    return discretised_serial_interval(mean, sd)


_SI_FALLBACK = {  # days (mean, sd) when the catalog has none [Vink2014; Cori2013]
    "influenza": (2.6, 1.5), "measles": (11.7, 2.5), "hfmd": (3.7, 2.0), "oid": (3.6, 2.0),
    "varicella": (14.0, 2.5), "mumps": (18.0, 3.5), "dysentery": (3.0, 2.0),
}  # fmt: skip


def _primary_code(dis: DiseaseCalibration) -> str:
    codes = dis.codes()
    return max(codes, key=lambda c: codes[c])


def schedule_outbreaks(
    rng: np.random.Generator,
    city: CityModel,
    diseases: list[DiseaseCalibration],
    facts: CatalogFacts,
    start: date,
    n_days: int,
    expected: dict[str, NDArray[np.float64]],
) -> list[_Injected]:
    """Draw the outbreaks of the run from the config's rates (Poisson numbers per year)."""
    cfg = city.config.outbreaks
    keys = {d.key: i for i, d in enumerate(diseases)}
    years = n_days / 365.25
    out: list[_Injected] = []
    w_pop = city.population / city.population.sum()

    def start_day(recent: bool = False) -> int:
        if recent:
            return max(n_days - int(rng.integers(8, 16)), 0)
        return int(rng.integers(0, max(n_days - 10, 1)))

    def new_truth(
        kind: str, d: int, ti: int, place: Place | None, onset: NDArray[np.int64], **kw: Any
    ) -> OutbreakTruth:
        dis = diseases[d]
        return OutbreakTruth(
            id=len(out) + 1,
            kind=kind,
            disease_key=dis.key,
            disease_code=_primary_code(dis),
            region_code=city.codes[ti],
            place_name=place.name if place else None,
            place_kind=place.kind if place else None,
            start=start + timedelta(days=int(onset.min())),
            end=start + timedelta(days=int(onset.max())),
            extra_cases=int(onset.size),
            townships=sorted({city.codes[ti]}),
            **kw,
        )

    def institutional(
        kind: str, rule: OutbreakRule, kinds: tuple[str, ...], recent: bool = False
    ) -> None:
        d = _pick_disease(rng, rule, keys)
        candidates = [p for p in city.places if p.kind in kinds and p.capacity >= 20]
        if d is None or not candidates:
            return
        caps = np.array([p.capacity for p in candidates], dtype=np.float64)
        place = candidates[int(rng.choice(len(candidates), p=caps / caps.sum()))]
        dis = diseases[d]
        lo, hi = rule.rt or (2.0, 3.0)
        r0 = float(rng.uniform(lo, hi))
        sus_lo, sus_hi = rule.susceptible or (0.1, 0.3)
        pool = max(int(place.capacity * rng.uniform(sus_lo, sus_hi)), 8)
        cap = max(int(place.capacity * (rule.attack_cap or 0.4)), 5)
        w = _serial_interval(_primary_code(dis), facts, _SI_FALLBACK.get(dis.key, (4.0, 2.0)))
        # a recent cluster must already show (≥ 5 onsets) by the last day: redraw if not
        for _ in range(20 if recent else 1):
            curve = renewal_outbreak(rng, r0, w, 1, population=pool, max_cases=cap, min_cases=5)
            onset = start_day(recent) + np.repeat(np.arange(curve.onsets.size), curve.onsets)
            onset = onset[onset < n_days]
            if onset.size >= 5:
                break
        if onset.size == 0:
            return
        occupation = people.OCC_KINDERGARTEN if place.kind == "kindergarten" else people.OCC_STUDENT
        subtype = {"hfmd": "EV71" if rng.random() < 0.4 else "CA16", "oid": "NORO"}.get(dis.key)
        truth = new_truth(
            kind,
            d,
            place.township,
            place,
            onset,
            rt=r0,
            note=f"closed population {place.capacity}, R0 {r0:.2f}",
        )
        out.append(
            _Injected(
                truth,
                d,
                np.full(onset.size, place.township),
                onset,
                place.age_range,
                occupation,
                place.name,
                subtype,
                place.id,
            )
        )

    def n_events(rule: OutbreakRule | None) -> int:
        return int(rng.poisson(rule.per_year * years)) if rule else 0

    # point source: one meal, one day of exposure
    for _ in range(n_events(cfg.point_source)):
        rule = cfg.point_source
        assert rule is not None
        d = _pick_disease(rng, rule, keys)
        if d is None:
            continue
        ti = int(rng.choice(city.n, p=w_pop))
        lo, hi = rule.size or (15, 60)
        size = int(rng.integers(lo, hi + 1))
        curve = point_source_outbreak(
            rng, size, rule.incubation_median_days or 1.2, rule.incubation_dispersion or 1.6
        )
        onset = start_day() + np.repeat(np.arange(curve.onsets.size), curve.onsets)
        onset = onset[onset < n_days]
        if onset.size == 0:
            continue
        venue = Place(
            -1,
            "venue",
            f"{city.names[ti]}{['某餐馆', '某农家乐', '某宴席'][int(rng.integers(3))]}",
            ti,
            size,
        )
        truth = new_truth("point_source", d, ti, venue, onset, note=f"exposed {size}")
        out.append(
            _Injected(
                truth,
                d,
                np.full(onset.size, ti),
                onset,
                (15, 70),
                None,
                None,
                "NORO" if diseases[d].key == "oid" else None,
            )
        )

    # propagated in the community by the renewal equation
    for _ in range(n_events(cfg.propagated)):
        rule = cfg.propagated
        assert rule is not None
        d = _pick_disease(rng, rule, keys)
        if d is None:
            continue
        dis = diseases[d]
        ti = int(rng.choice(city.n, p=w_pop))
        r_lo, r_hi = rule.rt or (1.5, 2.5)
        r0 = float(rng.uniform(r_lo, r_hi))
        s_lo, s_hi = rule.seed_cases or (1, 3)
        w = _serial_interval(_primary_code(dis), facts, _SI_FALLBACK.get(dis.key, (4.0, 2.0)))
        # the susceptible pool (unvaccinated, not yet immune) bounds the outbreak's size
        cap = rule.max_cases or 300
        p_lo, p_hi = rule.size or (40, 400)
        pool = int(rng.integers(p_lo, p_hi + 1))
        curve = renewal_outbreak(
            rng,
            r0,
            w,
            int(rng.integers(s_lo, s_hi + 1)),
            population=pool,
            max_cases=cap,
            min_cases=5,
        )
        onset = start_day() + np.repeat(np.arange(curve.onsets.size), curve.onsets)
        onset = onset[onset < n_days]
        if onset.size == 0:
            continue
        near = [ti, *city.neighbours(ti, 3)]
        tw = rng.choice(near, onset.size, p=[0.7, 0.1, 0.1, 0.1])
        truth = new_truth(
            "propagated",
            d,
            ti,
            None,
            onset,
            rt=r0,
            note=f"R0 {r0:.2f}, renewal equation, susceptible pool {pool}",
        )
        truth.townships = sorted({city.codes[int(j)] for j in tw})
        out.append(_Injected(truth, d, tw.astype(np.int64), onset))

    for _ in range(n_events(cfg.kindergarten)):
        assert cfg.kindergarten is not None
        institutional("kindergarten", cfg.kindergarten, ("kindergarten",))
    for _ in range(n_events(cfg.school)):
        assert cfg.school is not None
        institutional("school", cfg.school, ("primary_school", "middle_school"))

    # spatial: an excess over a few neighbouring townships for some weeks
    for _ in range(n_events(cfg.spatial)):
        rule = cfg.spatial
        assert rule is not None
        d = _pick_disease(rng, rule, keys)
        if d is None:
            continue
        dis = diseases[d]
        ti = int(rng.choice(city.n, p=w_pop))
        k_lo, k_hi = rule.townships or (2, 4)
        group = [ti, *city.neighbours(ti, int(rng.integers(k_lo, k_hi + 1)) - 1)]
        d_lo, d_hi = rule.days or (14, 42)
        length = int(rng.integers(d_lo, d_hi + 1))
        s0 = start_day()
        days = np.arange(s0, min(s0 + length, n_days))
        if days.size == 0:
            continue
        e_lo, e_hi = rule.relative_excess or (1.0, 2.5)
        excess = float(rng.uniform(e_lo, e_hi))
        bump = np.sin(np.pi * (np.arange(days.size) + 0.5) / days.size) * (np.pi / 2)
        base = expected[dis.key][group][:, days]  # (g, len)
        # at least ~20 extra cases so that rare diseases show a cluster at all
        boost = max(excess, 20.0 / max(float(base.sum()), 1e-9))
        counts = negative_binomial(rng, base * boost * bump[None, :], dis.phi)
        ti_idx, day_idx = np.nonzero(counts)
        reps = counts[ti_idx, day_idx]
        onset = np.repeat(days[day_idx], reps)
        tw = np.repeat(np.array(group)[ti_idx], reps)
        if onset.size == 0:
            continue
        truth = new_truth(
            "spatial",
            d,
            ti,
            None,
            onset,
            note=f"{len(group)} townships, +{excess:.0%} over {days.size} days",
        )
        truth.townships = sorted({city.codes[j] for j in group})
        out.append(_Injected(truth, d, tw.astype(np.int64), onset))

    if cfg.ensure_recent and cfg.kindergarten is not None and n_days > 30:
        institutional("kindergarten", cfg.kindergarten, ("kindergarten",), recent=True)
    for i, inj in enumerate(out, start=1):
        inj.truth.id = i
    return out


# ---------------------------------------------------------------------------------------
# 3–5. persons, reporting, cards
# ---------------------------------------------------------------------------------------


def _weighted_choice(
    rng: np.random.Generator, weights: dict[str, float], n: int
) -> NDArray[np.str_]:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return np.array(keys)[rng.choice(len(keys), n, p=p / p.sum())]


def _ages(
    rng: np.random.Generator, bands: list[tuple[int, int, float]], n: int
) -> NDArray[np.int64]:
    w = np.array([b[2] for b in bands], dtype=np.float64)
    pick = rng.choice(len(bands), n, p=w / w.sum())
    lo = np.array([b[0] for b in bands])[pick]
    hi = np.array([b[1] for b in bands])[pick]
    return np.floor(lo + rng.random(n) * (hi - lo)).astype(np.int64)


def _lognormal_days(
    rng: np.random.Generator, median: float, disp: float, n: int
) -> NDArray[np.float64]:
    return rng.lognormal(np.log(median), np.log(disp), n)


def _card_number(county: str, year: int, seq: int) -> str:
    return f"{county}{year}{seq:07d}"


def simulate_city(
    city: CityModel,
    diseases: list[DiseaseCalibration],
    facts: CatalogFacts,
    start: date,
    end: date,
    seed: int,
    errors_share: float | None = None,
    scale: float = 1.0,
) -> SimulationResult:
    """Run the whole simulation from ``start`` to ``end`` (inclusive, local dates)."""
    if end < start:
        raise ValueError("end must not be before start")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    n_days = (end - start).days + 1
    root = np.random.SeedSequence([seed, 0x5EED])
    (s_base, s_out, s_person, s_report, s_err, s_mult) = root.spawn(6)
    if facts.diseases:
        keep = []
        for d in diseases:
            known = {c: w for c, w in d.codes().items() if c in facts.diseases}
            if not known:
                log.warning("disease %s (%s) not in the catalog; left out", d.key, d.code)
                continue
            keep.append(d.model_copy(update={"code": known}) if len(known) != len(d.codes()) else d)
        diseases = keep

    # 1. baseline -------------------------------------------------------------------------
    rng_mult = np.random.default_rng(s_mult)
    expected: dict[str, NDArray[np.float64]] = {}
    parts_d, parts_t, parts_o = [], [], []
    rng_base = np.random.default_rng(s_base)
    for di, dis in enumerate(diseases):
        mult = township_multipliers(city, dis, rng_mult)
        mu = expected_baseline(city, dis, start, n_days, mult, scale)
        expected[dis.key] = mu
        counts = negative_binomial(rng_base, mu, dis.phi)
        t_idx, day_idx = np.nonzero(counts)
        reps = counts[t_idx, day_idx]
        parts_d.append(np.full(int(reps.sum()), di, dtype=np.int64))
        parts_t.append(np.repeat(t_idx, reps).astype(np.int64))
        parts_o.append(np.repeat(day_idx, reps).astype(np.int64))

    # 2. outbreaks ------------------------------------------------------------------------
    rng_out = np.random.default_rng(s_out)
    injected = schedule_outbreaks(rng_out, city, diseases, facts, start, n_days, expected)
    n_base = int(sum(p.size for p in parts_d))
    dis_idx = (
        np.concatenate([*parts_d, *[np.full(i.onset.size, i.disease) for i in injected]])
        if n_base or injected
        else np.zeros(0, np.int64)
    )
    town = (
        np.concatenate([*parts_t, *[i.township for i in injected]])
        if dis_idx.size
        else np.zeros(0, np.int64)
    )
    onset = (
        np.concatenate([*parts_o, *[i.onset for i in injected]])
        if dis_idx.size
        else np.zeros(0, np.int64)
    )
    outbreak = np.concatenate(
        [np.full(n_base, 0, np.int64), *[np.full(i.onset.size, i.truth.id) for i in injected]]
    ).astype(np.int64)
    n = dis_idx.size

    # 3. persons --------------------------------------------------------------------------
    rng_p = np.random.default_rng(s_person)
    age = np.zeros(n, dtype=np.int64)
    male = np.zeros(n, dtype=bool)
    for di, dis in enumerate(diseases):
        sel = np.flatnonzero(dis_idx == di)
        age[sel] = _ages(rng_p, dis.age, sel.size)
        male[sel] = rng_p.random(sel.size) < dis.male
    occ_override = np.full(n, "", dtype="<U2")
    work_unit = np.full(n, "", dtype=object)
    subtype = np.full(n, "", dtype=object)
    place_of = np.full(n, -1, dtype=np.int64)
    offset = n_base
    for inj in injected:
        sl = slice(offset, offset + inj.onset.size)
        if inj.age_range is not None:
            a0, a1 = inj.age_range
            age[sl] = rng_p.integers(a0, a1, inj.onset.size)
        if inj.occupation:
            occ_override[sl] = inj.occupation
        if inj.work_unit:
            work_unit[sl] = inj.work_unit
        if inj.subtype:
            subtype[sl] = inj.subtype
        place_of[sl] = inj.place_id
        offset += inj.onset.size
    sex = np.where(male, "1", "2")
    occ = np.full(n, people.OCC_UNKNOWN, dtype="<U2")
    for di, dis in enumerate(diseases):
        sel = np.flatnonzero(dis_idx == di)
        occ[sel] = people.occupations(
            rng_p, age[sel], dis.occupations, city.herding[town[sel]], city.urban[town[sel]]
        )
    has_override = occ_override != ""
    occ[has_override] = occ_override[has_override]
    # leaf disease code (TB by lab result, syphilis by stage)
    code = np.empty(n, dtype=object)
    for di, dis in enumerate(diseases):
        sel = np.flatnonzero(dis_idx == di)
        code[sel] = _weighted_choice(rng_p, dis.codes(), sel.size)

    # 4. reporting ------------------------------------------------------------------------
    rcfg = city.config.reporting
    rng_r = np.random.default_rng(s_report)
    delay = np.zeros(n)
    for di, dis in enumerate(diseases):
        sel = np.flatnonzero(dis_idx == di)
        delay[sel] = _lognormal_days(
            rng_r, dis.diagnosis_delay.median, dis.diagnosis_delay.dispersion, sel.size
        )
    diag = onset + np.floor(delay).astype(np.int64)
    horizon = n_days + 400
    wd = weekday_index(start, horizon)
    holiday = spring_festival_mask(start, horizon, rcfg.holiday_days_after_new_year)
    # weekend: a share of diagnoses waits for Monday; Spring Festival: for the holiday's end
    for _ in range(2):
        d_c = np.minimum(diag, horizon - 1)
        wkend = (wd[d_c] >= 5) & (rng_r.random(n) > rcfg.weekend_diagnosis_factor)
        diag = np.where(wkend, diag + (7 - wd[d_c]), diag)
        d_c = np.minimum(diag, horizon - 1)
        hol = holiday[d_c] & (rng_r.random(n) > rcfg.spring_festival_factor)
        if hol.any():
            nxt = np.searchsorted(np.flatnonzero(~holiday), d_c[hol])
            free = np.flatnonzero(~holiday)
            diag[hol] = free[np.minimum(nxt, free.size - 1)]
    hour = rng_r.choice(24, n, p=_HOUR_WEIGHTS)
    report_h = _lognormal_days(rng_r, 3.0, 2.2, n)
    late = rng_r.random(n) < rcfg.late_report_share
    report_h = np.where(late, 24.5 + rng_r.exponential(30.0, n), np.minimum(report_h, 23.5))
    diag_minutes = diag * 1440 + hour * 60 + rng_r.integers(0, 60, n)
    entered_minutes = diag_minutes + np.round(report_h * 60).astype(np.int64)
    end_minutes = n_days * 1440 - 1
    reported = entered_minutes <= end_minutes

    # reporting hospital
    to_county = rng_r.random(n) < city.config.hospitals.county_hospital_share
    severe = np.isin(code.astype(str), list(_SEVERE_TO_COUNTY))
    to_county |= severe & (rng_r.random(n) < 0.8)
    pick = rng_r.random(n)
    review_h = _lognormal_days(
        rng_r, rcfg.review_lag_hours.median, rcfg.review_lag_hours.dispersion, n
    )

    # classification / chronicity
    classification = np.empty(n, dtype=object)
    chronicity = np.full(n, None, dtype=object)
    for di, dis in enumerate(diseases):
        sel = np.flatnonzero(dis_idx == di)
        for leaf in dis.codes():
            lsel = sel[code[sel] == leaf]
            weights = dict(dis.classification)
            f = facts.diseases.get(leaf)
            if f and f.classifications:
                allowed = set(f.classifications)
                weights = {k: v for k, v in weights.items() if k in allowed} or {
                    sorted(allowed)[0]: 1.0
                }
            classification[lsel] = _weighted_choice(rng_p, weights, lsel.size)
        asks = any(facts.diseases.get(c) and facts.diseases[c].chronicity for c in dis.codes())
        if dis.chronicity and (asks or not facts.diseases):
            chronicity[sel] = _weighted_choice(rng_p, dis.chronicity, sel.size)

    # the hospital where every case is diagnosed (cards of reported cases name it too)
    org_of = np.empty(n, dtype=object)
    for i in range(n):
        ti = int(town[i])
        if to_county[i] or not city.township_reporters.get(ti):
            pool_i = city.county_reporters.get(city.county[ti]) or city.all_reporters()
        else:
            pool_i = city.township_reporters[ti]
        org_of[i] = pool_i[int(pick[i] * len(pool_i))].code

    # order the reported cases by diagnosis time, then assign numbers and persons
    idx = np.flatnonzero(reported)
    order = np.lexsort((np.arange(idx.size), town[idx], dis_idx[idx], diag_minutes[idx]))
    idx = idx[order]
    m = idx.size

    names = people.names(rng_p, sex[idx], 0.0)
    hui = rng_p.random(m) < city.hui_share[town[idx]]
    hui_names = people.names(rng_p, sex[idx], 1.0)
    names = [h if u else nm for nm, h, u in zip(names, hui_names, hui, strict=True)]
    onset_dates = [start + timedelta(days=int(d)) for d in onset[idx]]
    births = people.birth_dates(rng_p, onset_dates, age[idx])
    ids = people.id_numbers(rng_p, [city.county[t] for t in town[idx]], births, sex[idx])
    phones = people.phones(rng_p, m)
    guardian_sex = np.where(rng_p.random(m) < 0.5, "1", "2")
    guardians = people.names(rng_p, guardian_sex, 0.0)
    village = rng_p.integers(0, len(_VILLAGES), m)
    group_no = rng_p.integers(1, 12, m)
    house = rng_p.integers(1, 120, m)
    street = rng_p.integers(0, len(_STREETS), m)
    has_phone = rng_p.random(m) < 0.9
    doctors = _doctor_pools(rng_p, city)

    prefix = (
        city.config.name
        if city.config.name.startswith(("宁夏",))
        else "宁夏回族自治区" + city.config.name
    )
    cards: list[dict[str, Any]] = []
    card_of_case = np.full(n, -1, dtype=np.int64)
    seq_by_county: dict[tuple[str, int], int] = {}
    end_local = datetime.combine(end, time(23, 59, 59))
    # timestamps as arrays (minutes from the start's midnight, local), then as datetimes
    base = np.datetime64(start, "m")
    diag_m = (diag_minutes[idx] // 60) * 60
    ent_m = entered_minutes[idx]
    rev_m = ent_m + np.round(review_h[idx] * 60).astype(np.int64)
    sub_from_m = (n_days - rcfg.submitted_days) * 1440 if rcfg.submitted_days else end_minutes + 1
    is_reviewed = (rev_m <= end_minutes) & (ent_m < sub_from_m)
    limit_h = np.array(
        [facts.diseases[c].review_limit_hours if c in facts.diseases else 24 for c in code[idx]],
        dtype=np.int64,
    )
    utc = int(UTC_OFFSET.total_seconds() // 60)

    def as_datetimes(minutes: NDArray[np.int64]) -> list[datetime]:
        return list((base + minutes).astype("datetime64[us]").tolist())

    diag_dts = as_datetimes(diag_m)
    entered_utc = as_datetimes(ent_m - utc)
    reviewed_utc = as_datetimes(rev_m - utc)
    due_utc = as_datetimes(ent_m - utc + limit_h * 60)
    diag_years = (base + diag_m).astype("datetime64[Y]").astype(np.int64) + 1970
    towns = town[idx]
    # the person behind each card as diagnosed, before any deliberate card error
    person: dict[str, NDArray[Any]] = {
        k: np.full(n, None, dtype=object)
        for k in ("name", "id_number", "birth_date", "phone", "address_detail")
    }
    for j in range(m):
        i = int(idx[j])
        ti = int(towns[j])
        county = city.county[ti]
        if to_county[i] or not city.township_reporters.get(ti):
            pool = city.county_reporters.get(county) or city.all_reporters()
        else:
            pool = city.township_reporters[ti]
        rep = pool[int(pick[i] * len(pool))]
        diag_dt = diag_dts[j]
        year = int(diag_years[j])
        seq = seq_by_county.get((county, year), 0) + 1
        seq_by_county[(county, year)] = seq
        a = int(age[i])
        child = a <= 14
        reviewed = bool(is_reviewed[j])
        o = str(occ[i])
        wu = str(work_unit[i]) or _work_unit(o, city, ti, rep.name, int(village[j]))
        if city.urban[ti]:
            place = f"{_STREETS[int(street[j])]}路{int(house[j])}号"
        else:
            place = f"{_VILLAGES[int(village[j])]}村{int(group_no[j])}组{int(house[j])}号"
        detail = f"{prefix}{city.county_names[county]}{city.names[ti]}{place}"
        card = {
            "card_number": _card_number(county, year, seq),
            "report_type": "1",
            "status": "reviewed" if reviewed else "submitted",
            "version": 1,
            "patient_name": names[j],
            # a parent shares the child's surname in most families
            "guardian_name": names[j][0] + guardians[j][1:] if child else None,
            "id_type": "1",
            "id_number": ids[j],
            "sex": str(sex[i]),
            "birth_date": births[j],
            "age_value": a if a >= 1 else _infant_age(births[j], onset_dates[j])[0],
            "age_unit": "01" if a >= 1 else _infant_age(births[j], onset_dates[j])[1],
            "work_unit": wu or None,
            "phone": phones[j] if (child or has_phone[j]) else None,
            "residence_category": "1" if rep.county == county else "2",
            "address_code": city.codes[ti],
            "address_detail": detail[:100],
            "occupation": o,
            "occupation_other": None,
            "classification": str(classification[i]),
            "chronicity": chronicity[i],
            "onset_date": onset_dates[j],
            "diagnosis_time": diag_dt,
            "death_date": None,
            "disease_code": str(code[i]),
            "subtype_code": str(subtype[i]) or None,
            "org_code": rep.code,
            "doctor_name": doctors[rep.code][int(house[j]) % len(doctors[rep.code])],
            "fill_date": diag_dt.date(),
            "remarks": None,
            "entered_at": entered_utc[j],
            "submitted_at": entered_utc[j],
            "review_due_at": due_utc[j],
            "reviewed_at": reviewed_utc[j] if reviewed else None,
            "reviewed_by": f"cdc-{county}" if reviewed else None,
            "created_by": "simulator",
            "source": "web",
            "updated_at": reviewed_utc[j] if reviewed else entered_utc[j],
        }
        card_of_case[i] = len(cards)
        person["name"][i] = card["patient_name"]
        person["id_number"][i] = card["id_number"]
        person["birth_date"][i] = card["birth_date"]
        person["phone"][i] = card["phone"]
        person["address_detail"][i] = card["address_detail"]
        cards.append(card)

    # ground truth of outbreaks
    truths = [inj.truth for inj in injected]
    for t in truths:
        members = np.flatnonzero(outbreak == t.id)
        nums = [cards[int(card_of_case[k])]["card_number"] for k in members if card_of_case[k] >= 0]
        t.card_numbers = sorted(nums)
        t.unreported_cases = int(members.size - len(nums))

    # 5. errors ---------------------------------------------------------------------------
    share = city.config.errors.share if errors_share is None else errors_share
    rng_e = np.random.default_rng(s_err)
    errors = inject_errors(rng_e, cards, share, city.config.errors.mix, city, end_local)

    cases = {
        "disease": np.array([diseases[d].key for d in dis_idx], dtype=object),
        "disease_code": code,
        "township": np.array([city.codes[t] for t in town], dtype=object),
        "onset": onset,
        "diagnosis": diag,
        "outbreak": outbreak,
        "reported": reported,
        "card": card_of_case,
        "age": age,
        "sex": sex,
        "occupation": occ,
        "classification": classification,
        "chronicity": chronicity,
        "subtype": subtype,
        "place": place_of,
        "org": org_of,
        "diagnosis_minute": diag_minutes,
        **person,
    }
    reporters = sorted(
        {
            (r.code, r.name, r.county, city.codes[r.township] if r.township >= 0 else r.county)
            for r in city.all_reporters()
            if r.synthetic
        }
    )
    return SimulationResult(
        start, end, seed, cards, truths, errors, cases, city, diseases, expected, reporters
    )


# Hour of diagnosis: outpatient hours dominate, a few at night (emergency rooms).
_HOUR_WEIGHTS = np.array(
    [1, 1, 1, 1, 1, 1, 2, 4, 10, 12, 12, 10, 5, 5, 9, 10, 10, 8, 5, 4, 3, 2, 2, 1], dtype=np.float64
)
_HOUR_WEIGHTS /= _HOUR_WEIGHTS.sum()


def _infant_age(born: date, at: date) -> tuple[int, str]:
    """Completed months at ``at`` (unit 02), or days (unit 03) under one month."""
    months = (at.year - born.year) * 12 + at.month - born.month - (at.day < born.day)
    if months >= 1:
        return months, "02"
    return max((at - born).days, 0), "03"


def _doctor_pools(rng: np.random.Generator, city: CityModel) -> dict[str, list[str]]:
    pools: dict[str, list[str]] = {}
    for rep in sorted(city.all_reporters(), key=lambda r: r.code):
        k = 3 if rep.township >= 0 else 8
        pools[rep.code] = people.names(rng, np.where(rng.random(k) < 0.5, "1", "2"), 0.0)
    return pools


def _work_unit(occ: str, city: CityModel, ti: int, hospital: str, v: int) -> str:
    t = city.names[ti]
    if occ == people.OCC_KINDERGARTEN:
        return f"{t}第一幼儿园"
    if occ == people.OCC_STUDENT:
        return f"{t}第一小学" if v % 3 else f"{t}第一中学"
    if occ == people.OCC_TEACHER:
        return f"{t}第一小学"
    if occ == people.OCC_MEDICAL:
        return hospital
    if occ in (people.OCC_WORKER, people.OCC_MIGRANT):
        return f"{t}{['建材厂', '枸杞加工厂', '建筑工地', '物流园'][v % 4]}"
    if occ == people.OCC_CADRE:
        return f"{t}人民政府"
    return ""


def inject_errors(
    rng: np.random.Generator,
    cards: list[dict[str, Any]],
    share: float,
    mix: dict[str, float],
    city: CityModel,
    end_local: datetime,
) -> list[CardError]:
    """Give ``share`` of the cards one deliberate error each (in place); return the truth.

    Duplicates are new cards (same person and disease, another hospital, 1–3 days later)
    appended to ``cards``; the other kinds change the chosen card.
    """
    if not cards or share <= 0:
        return []
    weights = {k: float(mix.get(k, 1.0)) for k in ERROR_KINDS}
    n_err = round(share * len(cards))
    chosen = np.sort(rng.choice(len(cards), min(n_err, len(cards)), replace=False))
    kinds = _weighted_choice(rng, weights, chosen.size)
    out: list[CardError] = []
    seq_by_county: dict[tuple[str, int], int] = {}
    for c in cards:
        key = (c["card_number"][:6], int(c["card_number"][6:10]))
        seq_by_county[key] = max(seq_by_county.get(key, 0), int(c["card_number"][10:]))
    all_reporters = sorted(city.all_reporters(), key=lambda r: r.code)
    for k, kind in zip(chosen, kinds, strict=True):
        c = cards[int(k)]
        num = c["card_number"]
        if kind == "bad_id_checksum":
            good = c["id_number"]
            bad = good[:17] + next(ch for ch in people.CHECK_CHARS if ch != good[17])
            c["id_number"] = bad
            out.append(CardError(num, kind, f"id_number check character {good[17]}→{bad[17]}"))
        elif kind == "missing_field":
            options = ["id_number", "work_unit"] if c["work_unit"] else ["id_number"]
            if c["guardian_name"]:
                options += ["guardian_name", "phone"]
            fld = options[int(rng.integers(len(options)))]
            c[fld] = None
            if fld == "id_number":
                c["id_type"] = None
            out.append(CardError(num, kind, f"{fld} left empty"))
        elif kind == "impossible_date":
            if rng.random() < 0.5:
                c["onset_date"] = c["diagnosis_time"].date() + timedelta(
                    days=int(rng.integers(2, 10))
                )
                out.append(CardError(num, kind, "onset_date after diagnosis_time"))
            else:
                c["birth_date"] = c["onset_date"] + timedelta(days=int(rng.integers(5, 400)))
                out.append(CardError(num, kind, "birth_date after onset_date"))
        elif kind == "wrong_address_code":
            good = c["address_code"]
            bad = good[:6] + f"{int(good[6:]) % 100 + 150:03d}"  # a township number not in use
            c["address_code"] = bad
            out.append(CardError(num, kind, f"address_code {good}→{bad}"))
        elif kind == "duplicate":
            dup = dict(c)
            lag = timedelta(days=int(rng.integers(1, 4)), hours=int(rng.integers(0, 8)))
            entered = c["entered_at"] + lag
            if entered + UTC_OFFSET > end_local:
                continue
            other = all_reporters[int(rng.integers(len(all_reporters)))]
            county = num[:6]
            year = int(num[6:10])
            seq = seq_by_county[(county, year)] + 1
            seq_by_county[(county, year)] = seq
            dup.update(
                card_number=_card_number(county, year, seq),
                org_code=other.code,
                diagnosis_time=c["diagnosis_time"] + lag,
                fill_date=(c["diagnosis_time"] + lag).date(),
                entered_at=entered,
                submitted_at=entered,
                review_due_at=c["review_due_at"] + lag,
                updated_at=entered,
                residence_category="1" if other.county == county else "2",
            )
            if c["status"] == "reviewed" and entered + UTC_OFFSET + timedelta(days=3) < end_local:
                dup.update(
                    reviewed_at=entered + timedelta(hours=6),
                    updated_at=entered + timedelta(hours=6),
                )
            else:
                dup.update(status="submitted", reviewed_at=None, reviewed_by=None)
            cards.append(dup)
            out.append(
                CardError(dup["card_number"], kind, f"second card for {num}", duplicate_of=num)
            )
    return out


def content_digest(cards: list[dict[str, Any]]) -> str:
    """SHA-256 over the cards in order: equal for equal runs (a determinism check)."""
    h = hashlib.sha256()
    for c in cards:
        h.update(str(tuple(c.values())).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()
