"""The city's other data streams (多点触发), driven by the same illness as the cards.

One community illness model feeds every stream (parameters in ``data/streams.yaml``, the
diseases' syndromes and reporting-pyramid factors in ``data/clinical.yaml``). For each
township and day and each syndrome (respiratory, gastrointestinal, rash)::

    episodes = background episodes (seasonal, per 1,000 residents a year)
             + Σ_d community_factor_d × (expected baseline_d + onsets of community outbreaks_d)
             + closed_outbreak_factor × onsets of closed outbreaks (point source, institution)

The baseline expectation (not the drawn cases) enters so that a reporting pyramid of 30
does not turn one case into 30 episodes on one day; the injected outbreaks enter with their
actual onsets, so every outbreak shows where it should. From the episodes:

* **school absence** per kindergarten and school on school days: pupils off sick with fever
  (respiratory), vomiting/diarrhoea or rash, plus other absences; the pupils of a kindergarten
  or school cluster are absent from their onset for the disease's exclusion period;
* **pharmacy sales** per pharmacy and day: fever/cough remedies and antidiarrhoeals bought by
  a share of the episodes over the three days from onset, plus other sales (the denominator);
* **sentinel hospitals**: ILI visits over monitored outpatient visits (ILI%), fever-clinic
  visits, and a respiratory multiplex panel on a few ILI specimens a day, whose positives per
  pathogen follow the pathogens' shares of the ILI episodes (influenza from the cards'
  disease, the others from the background);
* **livestock brucellosis** serology per herding township twice a month: sheep tested and
  sero-positive, prevalence following the township's human brucellosis rate and rising
  ``lead_weeks`` before and during a human brucellosis cluster there.

Counts are Poisson or negative binomial around these means; every stream draws from its own
child of the run's seed, so streams never change the cards and equal seeds give equal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from yifang.simulate.calendar import day_of_year, lunar_new_year, weekday_index
from yifang.simulate.city import CityModel, Place
from yifang.simulate.config import (
    SYNDROMES,
    ClinicalConfig,
    Seasonal,
    StreamsConfig,
)
from yifang.simulate.counts import Harmonic, negative_binomial, seasonal_factor
from yifang.simulate.engine import SimulationResult

CLOSED_KINDS = ("point_source", "kindergarten", "school")
PLACE_PREFIX = {
    "kindergarten": "KG",
    "primary_school": "PS",
    "middle_school": "MS",
    "pharmacy": "PH",
    "elderly_home": "EH",
}
SCHOOL_KINDS = ("kindergarten", "primary_school", "middle_school")
ABSENCE_STREAMS = {
    "respiratory": "school_absence_fever",
    "gi": "school_absence_gi",
    "rash": "school_absence_rash",
}
# days at home per background episode that keeps a pupil at home, and the share that does
_BACKGROUND_ABSENCE = {"respiratory": (2.0, 0.5), "gi": (1.5, 0.6), "rash": (3.0, 0.5)}
# share of episodes that buy on the day of onset, the next day and the day after
_PURCHASE_KERNEL = np.array([0.5, 0.35, 0.15])
# share of episodes that come to a hospital on the day of onset, the next day, the day after
_VISIT_KERNEL = np.array([0.45, 0.4, 0.15])
_ILI_SHARE_OF_FEVERISH = 0.8  # feverish respiratory notifiable cases meeting the ILI definition


def place_code(place: Place) -> str:
    """A stable identifier for a generated place: kind prefix + its number in the city."""
    return f"{PLACE_PREFIX.get(place.kind, 'PL')}{place.id:05d}"


@dataclass(frozen=True)
class StreamSeries:
    """One stream at one place: values on ``days`` (day numbers from the run's start)."""

    stream: str
    region_code: str
    place_id: str
    days: NDArray[np.int64]
    value: NDArray[np.int64]
    denominator: NDArray[np.int64] | None


@dataclass
class CommunityIllness:
    """Community episodes per township × day (and the parts the streams need)."""

    episodes: dict[str, NDArray[np.float64]]  # syndrome -> (townships, days)
    fever: NDArray[np.float64]
    ili: NDArray[np.float64]
    pathogen_ili: dict[str, NDArray[np.float64]]  # respiratory pathogen -> ILI episodes
    child_rate: dict[str, NDArray[np.float64]]  # (band, syndrome) keyed "band:syndrome"


@dataclass
class StreamSet:
    """All stream series of a run, in a fixed order."""

    start: date
    series: list[StreamSeries]

    def frame(self) -> Any:
        """The long table (polars): stream, region_code, place_id, date, value, denominator.

        Rows in the series' order, then by date; an empty denominator is null.
        """
        import polars as pl

        lens = np.array([s.days.size for s in self.series], dtype=np.int64)
        which = pl.Series(np.repeat(np.arange(lens.size), lens))

        def column(values: list[str]) -> Any:
            return pl.Series(values, dtype=pl.String).gather(which) if values else []

        def ints(arrays: list[NDArray[np.int64]]) -> NDArray[np.int64]:
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)

        den = ints(
            [
                s.denominator if s.denominator is not None else np.full(s.days.size, -1)
                for s in self.series
            ]
        )
        base = np.datetime64(self.start, "D")
        return pl.DataFrame(
            {
                "stream": column([s.stream for s in self.series]),
                "region_code": column([s.region_code for s in self.series]),
                "place_id": column([s.place_id for s in self.series]),
                "date": pl.Series(base + ints([s.days for s in self.series]), dtype=pl.Date),
                "value": pl.Series(ints([s.value for s in self.series]), dtype=pl.Int64),
                "denominator": pl.Series(den, dtype=pl.Int64),
            },
            schema={
                "stream": pl.String,
                "region_code": pl.String,
                "place_id": pl.String,
                "date": pl.Date,
                "value": pl.Int64,
                "denominator": pl.Int64,
            },
        ).with_columns(
            pl.when(pl.col("denominator") >= 0).then(pl.col("denominator")).alias("denominator")
        )

    def of(self, stream: str, place_id: str | None = None) -> list[StreamSeries]:
        return [s for s in self.series if s.stream == stream and place_id in (None, s.place_id)]


# ---------------------------------------------------------------------------------------
# the community illness behind every stream
# ---------------------------------------------------------------------------------------


def _seasonal(doy: NDArray[np.float64], s: Seasonal) -> NDArray[np.float64]:
    return seasonal_factor(doy, [Harmonic(s.amplitude, s.peak_day)]) * s.rate / 1000 / 365.25


def _outbreak_onsets(result: SimulationResult, keys: set[str], closed: bool) -> NDArray[np.float64]:
    """Onsets of injected outbreaks of diseases ``keys`` per township × day."""
    cases = result.cases
    out = np.zeros((result.city.n, result.n_days))
    kinds = {o.id: o.kind in CLOSED_KINDS for o in result.outbreaks}
    sel = cases["outbreak"] > 0
    if not sel.any():
        return out
    ob = cases["outbreak"][sel]
    keep = np.isin(cases["disease"][sel], list(keys)) & np.array(
        [kinds.get(int(k), False) == closed for k in ob], dtype=bool
    )
    town = np.array([result.city.index(c) for c in cases["township"][sel][keep]], dtype=np.int64)
    np.add.at(out, (town, cases["onset"][sel][keep]), 1.0)
    return out


def _band_share(bands: list[tuple[int, int, float]], lo: int, hi: int) -> float:
    """Share of a disease's cases aged lo ≤ age < hi (uniform within its age bands)."""
    w = np.array([b[2] for b in bands], dtype=np.float64)
    w = w / w.sum()
    share = 0.0
    for (a0, a1, _), wi in zip(bands, w, strict=True):
        share += wi * max(0, min(a1, hi) - max(a0, lo)) / max(a1 - a0, 1)
    return float(share)


def community_illness(
    result: SimulationResult, clinical: ClinicalConfig, cfg: StreamsConfig
) -> CommunityIllness:
    """Episodes per syndrome, fever and ILI episodes, and pupils' episode rates."""
    city = result.city
    n_days = result.n_days
    doy = day_of_year(result.start, n_days)
    pop = city.population[:, None]
    com = cfg.community
    resp = com.respiratory
    pathogen_bg = {k: pop * _seasonal(doy, s)[None, :] for k, s in resp.pathogens.items()}
    bg = {
        "respiratory": sum(pathogen_bg.values(), np.zeros((city.n, n_days))),
        "gi": pop * _seasonal(doy, com.gi)[None, :],
        "rash": pop * _seasonal(doy, com.rash)[None, :],
    }
    fever_share = {"respiratory": resp.fever_share, "gi": com.gi.fever_share}
    fever_share["rash"] = com.rash.fever_share
    episodes = {k: v.copy() for k, v in bg.items()}
    fever = sum((bg[k] * fever_share[k] for k in SYNDROMES), np.zeros((city.n, n_days)))
    ili = bg["respiratory"] * resp.ili_share
    pathogen_ili = {k: v * resp.ili_share for k, v in pathogen_bg.items()}
    # pupils: background at children_factor relative to the whole population, plus the
    # notifiable diseases' community episodes in the band's ages per pupil-age resident
    bands = {"kindergarten": (3, 7), "primary_school": (7, 13), "middle_school": (13, 19)}
    ages = city.config.age_structure
    child_share = sum(
        b.share * max(0, min(19, b.to) - max(3, b.from_)) / (b.to - b.from_) for b in ages
    )
    band_pop = {
        k: sum(b.share * max(0, min(hi, b.to) - max(lo, b.from_)) / (b.to - b.from_) for b in ages)
        for k, (lo, hi) in bands.items()
    }
    factors = {
        "respiratory": resp.children_factor,
        "gi": com.gi.children_factor,
        "rash": com.rash.children_factor,
    }
    child_rate: dict[str, NDArray[np.float64]] = {}
    for s in SYNDROMES:
        f = factors[s] / (child_share * factors[s] + (1 - child_share))
        for k in bands:
            child_rate[f"{k}:{s}"] = bg[s] / pop * f
    flu = np.zeros((city.n, n_days))
    for dis in result.diseases:
        pres = clinical.presentations.get(dis.key)
        if pres is None or dis.key not in result.expected:
            continue
        community = result.expected[dis.key] + _outbreak_onsets(result, {dis.key}, closed=False)
        closed = _outbreak_onsets(result, {dis.key}, closed=True)
        lam = pres.community_factor * community + cfg.closed_outbreak_factor * closed
        if pres.syndrome in episodes:
            episodes[pres.syndrome] += lam
        fever += lam * pres.fever.share
        if pres.syndrome == "respiratory":
            ili += lam * pres.fever.share * _ILI_SHARE_OF_FEVERISH
        if dis.key == "influenza":
            flu = lam * pres.fever.share * _ILI_SHARE_OF_FEVERISH
        if pres.syndrome in SYNDROMES:
            # pupils' share: community episodes only (institutional clusters are added as
            # the actual pupils in their own school)
            for k, (lo, hi) in bands.items():
                per_child = _band_share(dis.age, lo, hi) / band_pop[k]
                child_rate[f"{k}:{pres.syndrome}"] = (
                    child_rate[f"{k}:{pres.syndrome}"]
                    + pres.community_factor * community / pop * per_child
                )
    b_share = cfg.sentinels.flu_b_share
    pathogen_ili["flu_a"] = flu * (1 - b_share)
    pathogen_ili["flu_b"] = flu * b_share
    return CommunityIllness(episodes, fever, ili, pathogen_ili, child_rate)


def _lagged(x: NDArray[np.float64], kernel: NDArray[np.float64]) -> NDArray[np.float64]:
    """Σ_k kernel[k] · x[..., t − k] along the last axis (days)."""
    out = np.zeros_like(x)
    for k, w in enumerate(kernel):
        if k == 0:
            out += w * x
        else:
            out[..., k:] += w * x[..., :-k]
    return out


def _moving_sum(x: NDArray[np.float64], width: float) -> NDArray[np.float64]:
    """Σ over the last ``width`` days (fractional widths interpolate)."""
    whole = int(np.floor(width))
    frac = width - whole
    kernel = np.ones(whole + (1 if frac > 0 else 0))
    if frac > 0:
        kernel[-1] = frac
    return _lagged(x, kernel)


# ---------------------------------------------------------------------------------------
# school absence
# ---------------------------------------------------------------------------------------


def school_days(start: date, n_days: int, cfg: StreamsConfig) -> NDArray[np.bool_]:
    """True on days schools are open: weekdays outside the holidays of ``streams.yaml``."""
    rules = cfg.schools
    open_ = weekday_index(start, n_days) < 5
    days = [start + timedelta(days=i) for i in range(n_days)]
    md = np.array([d.month * 100 + d.day for d in days])
    (m0, d0), (m1, d1) = rules.summer
    open_ &= ~((md >= m0 * 100 + d0) & (md <= m1 * 100 + d1))
    for (a_m, a_d), (b_m, b_d) in rules.holidays:
        open_ &= ~((md >= a_m * 100 + a_d) & (md <= b_m * 100 + b_d))
    lo, hi = rules.winter_from_new_year
    for year in range(start.year, days[-1].year + 1):
        ny = lunar_new_year(year)
        a = (ny + timedelta(days=lo) - start).days
        b = (ny + timedelta(days=hi) - start).days
        open_[max(a, 0) : max(min(b + 1, n_days), 0)] = False
    return open_


def _cluster_absence(
    result: SimulationResult, clinical: ClinicalConfig, rng: np.random.Generator
) -> dict[tuple[int, str], NDArray[np.float64]]:
    """Pupils of institutional clusters at home, per (place id, syndrome) and day."""
    cases = result.cases
    out: dict[tuple[int, str], NDArray[np.float64]] = {}
    idx = np.flatnonzero(cases["place"] >= 0)
    if idx.size == 0:
        return out
    keys = cases["disease"][idx]
    durations = np.zeros(idx.size, dtype=np.int64)
    for key in sorted(set(keys)):
        sel = keys == key
        pres = clinical.presentations.get(str(key))
        lo, hi = pres.absence_days if pres and pres.absence_days else (3, 5)
        durations[sel] = rng.integers(lo, hi + 1, int(sel.sum()))
    # a pupil stays at home from the day after onset (or the day itself for half of them)
    first = cases["onset"][idx] + (rng.random(idx.size) < 0.5)
    for j, i in enumerate(idx):
        pres = clinical.presentations.get(str(cases["disease"][i]))
        syn = pres.syndrome if pres and pres.syndrome in SYNDROMES else "respiratory"
        arr = out.setdefault((int(cases["place"][i]), syn), np.zeros(result.n_days))
        a = int(first[j])
        arr[a : min(a + int(durations[j]), result.n_days)] += 1.0
    return out


def school_absence(
    result: SimulationResult,
    ill: CommunityIllness,
    clinical: ClinicalConfig,
    cfg: StreamsConfig,
    rng: np.random.Generator,
) -> list[StreamSeries]:
    """Daily absence per kindergarten and school: all causes and by symptom."""
    city = result.city
    n_days = result.n_days
    open_days = np.flatnonzero(school_days(result.start, n_days, cfg))
    clusters = _cluster_absence(result, clinical, rng)
    out: list[StreamSeries] = []
    schools = [p for p in city.places if p.kind in SCHOOL_KINDS and p.capacity > 0]
    for p in schools:
        n = p.capacity
        total = rng.poisson(n * cfg.schools.other_absence_rate, open_days.size).astype(np.int64)
        by_syndrome: dict[str, NDArray[np.int64]] = {}
        for s in SYNDROMES:
            width, stay = _BACKGROUND_ABSENCE[s]
            rate = ill.child_rate[f"{p.kind}:{s}"][p.township]
            mean = n * stay * _moving_sum(rate[None, :], width)[0]
            extra = clusters.get((p.id, s))
            drawn = rng.poisson(mean[open_days]).astype(np.int64)
            if extra is not None:
                drawn += extra[open_days].astype(np.int64)
            drawn = np.minimum(drawn, n)
            by_syndrome[s] = drawn
            total += drawn
        total = np.minimum(total, n)
        code = city.codes[p.township]
        pid = place_code(p)
        den = np.full(open_days.size, n, dtype=np.int64)
        out.append(StreamSeries("school_absence", code, pid, open_days, total, den))
        for s in SYNDROMES:
            out.append(StreamSeries(ABSENCE_STREAMS[s], code, pid, open_days, by_syndrome[s], den))
    return out


# ---------------------------------------------------------------------------------------
# pharmacies
# ---------------------------------------------------------------------------------------


def pharmacy_sales(
    result: SimulationResult, ill: CommunityIllness, cfg: StreamsConfig, rng: np.random.Generator
) -> list[StreamSeries]:
    """Daily packs of fever/cough remedies and antidiarrhoeals per pharmacy (of all packs)."""
    city = result.city
    rules = cfg.pharmacies
    n_days = result.n_days
    days = np.arange(n_days, dtype=np.int64)
    pharmacies = [p for p in city.places if p.kind == "pharmacy"]
    per_town: dict[int, list[Place]] = {}
    for p in pharmacies:
        per_town.setdefault(p.township, []).append(p)
    resp = _lagged(ill.episodes["respiratory"], _PURCHASE_KERNEL) * rules.fever_cough_share
    gi = _lagged(ill.episodes["gi"], _PURCHASE_KERNEL) * rules.antidiarrhoeal_share
    out: list[StreamSeries] = []
    for ti in sorted(per_town):
        group = per_town[ti]
        # fixed shares of the township's customers (larger and smaller shops)
        w = np.random.default_rng([int(city.codes[ti]), 0xFA12]).dirichlet(np.full(len(group), 5.0))
        served = city.population[ti] / 10_000
        for p, share in zip(group, w, strict=True):
            fc_mu = share * resp[ti] + rules.fever_cough_other
            ad_mu = share * gi[ti] + rules.antidiarrhoeal_other
            other_mu = np.full(n_days, rules.other_sales * served * share)
            fc = negative_binomial(rng, fc_mu, rules.phi)
            ad = negative_binomial(rng, ad_mu, rules.phi)
            other = negative_binomial(rng, other_mu, rules.phi)
            den = fc + ad + other
            code = city.codes[ti]
            pid = place_code(p)
            out.append(StreamSeries("pharmacy_fever_cough", code, pid, days, fc, den))
            out.append(StreamSeries("pharmacy_antidiarrhoeal", code, pid, days, ad, den))
    return out


# ---------------------------------------------------------------------------------------
# sentinel hospitals: ILI%, fever clinic, respiratory multiplex panel
# ---------------------------------------------------------------------------------------


def sentinel_hospitals(city: CityModel, cfg: StreamsConfig) -> dict[str, tuple[str, str]]:
    """County code -> (org code, org name) of its ILI sentinel hospital."""
    chosen: dict[str, tuple[str, str]] = {}
    wanted = set(cfg.sentinels.hospitals)
    for county in sorted(city.county_reporters):
        pool = sorted(city.county_reporters[county], key=lambda r: r.code)
        if wanted:
            pool = [r for r in pool if r.code in wanted]
        else:
            pool = [r for r in pool if "人民医院" in r.name] or pool
        if pool:
            chosen[county] = (pool[0].code, pool[0].name)
    return chosen


RESP_PANEL = (
    "flu_a",
    "flu_b",
    "rsv",
    "sars_cov_2",
    "adenovirus",
    "rhinovirus",
    "mycoplasma",
    "hmpv",
    "parainfluenza",
)


def sentinel_streams(
    result: SimulationResult, ill: CommunityIllness, cfg: StreamsConfig, rng: np.random.Generator
) -> list[StreamSeries]:
    """ILI and fever-clinic visits over outpatients, and multiplex positives over tests."""
    city = result.city
    rules = cfg.sentinels
    n_days = result.n_days
    days = np.arange(n_days, dtype=np.int64)
    weekend = weekday_index(result.start, n_days) >= 5
    day_factor = np.where(weekend, rules.weekend_factor, 1.0)
    out: list[StreamSeries] = []
    counties = np.array(city.county)
    for county, (org, _name) in sentinel_hospitals(city, cfg).items():
        rows = counties == county
        pop = city.population[rows].sum()
        ili_mu = _lagged(ill.ili[rows].sum(axis=0), _VISIT_KERNEL) * rules.visit_share
        fever_mu = _lagged(ill.fever[rows].sum(axis=0), _VISIT_KERNEL) * rules.fever_clinic_share
        ili = rng.poisson(ili_mu * day_factor).astype(np.int64)
        fever = rng.poisson(fever_mu * day_factor).astype(np.int64)
        outpatients = rng.poisson(rules.outpatients_per_10k * pop / 10_000 * day_factor) + ili
        region = county
        out.append(StreamSeries("ili", region, org, days, ili, outpatients.astype(np.int64)))
        out.append(StreamSeries("fever_clinic", region, org, days, fever, outpatients))
        # multiplex panel: a few ILI specimens a day, one result category each
        cap = np.where(weekend, max(rules.lab_tests_per_day // 3, 1), rules.lab_tests_per_day)
        tests = np.minimum(ili, cap)
        names = [k for k in RESP_PANEL if k in ill.pathogen_ili] + ["none"]
        weights = np.stack(
            [
                _lagged(ill.pathogen_ili[k][rows].sum(axis=0), _VISIT_KERNEL)
                if k in ill.pathogen_ili
                else np.zeros(n_days)
                for k in names
            ]
        )
        total = weights.sum(axis=0)
        probs = np.where(total > 0, weights / np.where(total > 0, total, 1.0), 0.0)
        probs[-1] = np.where(total > 0, probs[-1], 1.0)
        probs = probs / probs.sum(axis=0, keepdims=True)
        tested = np.flatnonzero(tests > 0)
        found = rng.multinomial(tests[tested], probs[:, tested].T)  # (days, categories)
        for j, k in enumerate(names[:-1]):
            out.append(
                StreamSeries(
                    f"resp_lab_{k}",
                    region,
                    org,
                    tested,
                    found[:, j].astype(np.int64),
                    tests[tested].astype(np.int64),
                )
            )
    return out


# ---------------------------------------------------------------------------------------
# livestock brucellosis
# ---------------------------------------------------------------------------------------


def livestock_brucellosis(
    result: SimulationResult, cfg: StreamsConfig, rng: np.random.Generator
) -> list[StreamSeries]:
    """Sheep tested and sero-positive per herding township on the sampling days."""
    city = result.city
    rules = cfg.livestock
    n_days = result.n_days
    if "brucellosis" not in result.expected:
        return []
    dis = next(d for d in result.diseases if d.key == "brucellosis")
    per_capita = result.expected["brucellosis"].mean(axis=1) / city.population
    herding = np.flatnonzero(city.herding)
    if herding.size == 0:
        return []
    ref = float(np.average(per_capita[herding], weights=city.population[herding]))
    # animals are infected ahead of people: the human season and trend, moved earlier
    lead = rules.lead_weeks * 7
    doy = day_of_year(result.start, n_days) + lead
    season = seasonal_factor(np.mod(doy, 365.25), dis.harmonics()) ** 0.5
    years = (np.arange(n_days) + lead) / 365.25
    trend = np.exp(dis.trend * (years - years.mean()))
    dates = [result.start + timedelta(days=i) for i in range(n_days)]
    sampled = np.flatnonzero(np.array([d.day in rules.sampling_days for d in dates]))
    boost = np.ones((city.n, n_days))
    for o in result.outbreaks:
        if o.disease_key != "brucellosis":
            continue
        a = max((o.start - result.start).days - lead, 0)
        b = min((o.end - result.start).days + 1, n_days)
        for code in o.townships:
            boost[city.index(code), a:b] = rules.cluster_factor
    out: list[StreamSeries] = []
    for ti in herding:
        level = rules.prevalence * np.sqrt(per_capita[ti] / ref) if ref > 0 else rules.prevalence
        prev = np.clip(level * season * trend * boost[ti], 0.0, 0.9)
        tested = rng.poisson(rules.animals_per_sampling, sampled.size).astype(np.int64)
        positive = rng.binomial(tested, prev[sampled]).astype(np.int64)
        code = city.codes[ti]
        out.append(StreamSeries("livestock_brucella", code, f"AH{code}", sampled, positive, tested))
    return out


# ---------------------------------------------------------------------------------------
# all streams
# ---------------------------------------------------------------------------------------


def build_streams(
    result: SimulationResult, clinical: ClinicalConfig, cfg: StreamsConfig
) -> tuple[StreamSet, CommunityIllness]:
    """Every stream of the run (same seed → same series)."""
    root = np.random.SeedSequence([result.seed, 0x57E4A])
    s_school, s_pharm, s_sent, s_live = root.spawn(4)
    ill = community_illness(result, clinical, cfg)
    series: list[StreamSeries] = []
    series += school_absence(result, ill, clinical, cfg, np.random.default_rng(s_school))
    series += pharmacy_sales(result, ill, cfg, np.random.default_rng(s_pharm))
    series += sentinel_streams(result, ill, cfg, np.random.default_rng(s_sent))
    series += livestock_brucellosis(result, cfg, np.random.default_rng(s_live))
    return StreamSet(result.start, series), ill
