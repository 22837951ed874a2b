"""Hospital encounters of the simulated city: the notifiable cases' visits and the background.

What the hospital front-end sees (diagnosis codes, chief complaints, temperature, department,
laboratory results), with the truth kept beside it:

* every notifiable case diagnosed by the last day has a **diagnosis** encounter at the
  hospital and time of its diagnosis, coded with an ICD-10 code of its disease
  (``data/clinical.yaml``; a confirmed case carries the laboratory results that prove it,
  e.g. the HIV confirmation blot, a TB smear and Xpert, a norovirus PCR, a brucella SAT);
* a share of the cases diagnosed two days or more after onset were seen once before, at a
  **prior** encounter coded with the unspecific diagnosis of their syndrome (upper
  respiratory infection, gastroenteritis, viral rash, fever of unknown origin) and no
  laboratory result — a case-finding rule should not draft a card from it;
* far more **background** encounters of non-notifiable conditions (colds, gastroenteritis,
  herpangina, urticaria, injuries, hypertension, diabetes …), per township and day Poisson
  around ``population × rate × season``; visits of the respiratory, gastrointestinal and
  rash conditions follow the community episodes of :mod:`yifang.simulate.streams`, so they
  rise with an influenza wave or a diarrhoea outbreak like the other streams.

Encounters are columns of arrays (:class:`Encounters`), ordered by visit time; persons are
added only when files are written (:mod:`yifang.simulate.encounter_files`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from yifang.simulate.calendar import day_of_year, spring_festival_mask, weekday_index
from yifang.simulate.config import (
    SYNDROMES,
    BackgroundCondition,
    ClinicalConfig,
    LabTest,
    Presentation,
    StreamsConfig,
)
from yifang.simulate.counts import Harmonic, seasonal_factor
from yifang.simulate.engine import _HOUR_WEIGHTS, SimulationResult
from yifang.simulate.streams import CommunityIllness

KINDS = ("diagnosis", "prior", "background")
# unspecific diagnosis of the visit before the diagnosing one, by syndrome
PRIOR_DIAGNOSIS = {
    "respiratory": ("J06.9", "急性上呼吸道感染"),
    "gi": ("K52.9", "急性胃肠炎"),
    "rash": ("B09", "病毒性皮疹"),
    "none": ("R50.9", "发热待查"),
}
# departments that see children as well (others send under-15s to 儿科)
_ALL_AGES = {"感染科", "发热门诊", "肠道门诊", "皮肤性病科", "结核病科", "眼科", "口腔科", "急诊科"}
_SUBTYPE_RESULT = {"EV71": "EV71", "CA16": "A16"}
_WEEKEND_VISITS = 0.6
_HOLIDAY_VISITS = 0.5


@dataclass
class LabResult:
    """One laboratory result of encounter row ``row`` (times in minutes from the start)."""

    row: int
    test: LabTest
    result: str
    collected_minute: int
    reported_minute: int


@dataclass
class Encounters:
    """Encounter columns (one entry per encounter, in visit order) and their lab results."""

    kind: NDArray[Any]
    minute: NDArray[np.int64]  # local minutes from the run's first midnight
    org: NDArray[Any]
    township: NDArray[np.int64]
    age: NDArray[np.int64]
    sex: NDArray[Any]
    icd10: NDArray[Any]
    diagnosis: NDArray[Any]
    complaint: NDArray[Any]
    temperature: NDArray[np.float64]
    department: NDArray[Any]
    case: NDArray[np.int64]  # row of result.cases, -1 for background
    true_disease: NDArray[Any]  # catalog leaf code of a notifiable case, "" for background
    card_number: NDArray[Any]
    outbreak: NDArray[np.int64]
    encounter_id: NDArray[Any] = field(default_factory=lambda: np.zeros(0, dtype=object))
    labs: list[LabResult] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.minute.size)


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> NDArray[Any]:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return np.array(keys, dtype=object)[rng.choice(len(keys), n, p=p / p.sum())]


def _temperatures(
    rng: np.random.Generator, share: NDArray[np.float64], mean: NDArray[np.float64]
) -> NDArray[np.float64]:
    """°C, one decimal: feverish visits around ``mean``, the others normal."""
    n = share.size
    fever = rng.random(n) < share
    hot = np.clip(rng.normal(mean, 0.4), 37.3, 41.5)
    normal = np.clip(rng.normal(36.6, 0.25, n), 35.8, 37.2)
    return np.asarray(np.round(np.where(fever, hot, normal), 1), dtype=np.float64)


def _departments(
    rng: np.random.Generator, weights: dict[str, float], ages: NDArray[np.int64]
) -> NDArray[Any]:
    dept = _choice(rng, weights, ages.size)
    child = (ages < 15) & ~np.isin(dept.astype(str), list(_ALL_AGES))
    dept[child] = "儿科"
    adult_options = [d for d in weights if d != "儿科"] or ["内科"]
    dept[(ages >= 15) & (dept == "儿科")] = adult_options[0]
    return dept


_MAX_DAYS = 60  # "{d}天" beyond this reads as the last value
_MAX_YEARS = 20


def _complaint_pool(templates: tuple[str, ...]) -> NDArray[Any]:
    """Every template filled for d = 0..60 days and y = 0..20 years: (T, 61, 21)."""
    pool = np.empty((len(templates), _MAX_DAYS + 1, _MAX_YEARS + 1), dtype=object)
    for k, t in enumerate(templates):
        for d in range(_MAX_DAYS + 1):
            for y in range(_MAX_YEARS + 1):
                pool[k, d, y] = t.format(d=max(d, 1), y=max(y, 1))
    return pool


_POOLS: dict[tuple[str, ...], NDArray[Any]] = {}


def _complaints(
    rng: np.random.Generator, templates: list[str], days: NDArray[np.int64]
) -> list[str]:
    """A chief complaint per visit: a random template with the days since onset filled in."""
    key = tuple(templates)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = _complaint_pool(key)
    pick = rng.integers(0, len(templates), days.size)
    years = rng.integers(1, _MAX_YEARS + 1, days.size)
    d = np.clip(np.asarray(days, dtype=np.int64), 1, _MAX_DAYS)
    return list(pool[pick, d, years].tolist())


def _day_factor(result: SimulationResult) -> NDArray[np.float64]:
    weekend = weekday_index(result.start, result.n_days) >= 5
    holiday = spring_festival_mask(result.start, result.n_days)
    return np.where(weekend, _WEEKEND_VISITS, 1.0) * np.where(holiday, _HOLIDAY_VISITS, 1.0)


def _case_rows(
    result: SimulationResult,
    clinical: ClinicalConfig,
    cfg: StreamsConfig,
    rng: np.random.Generator,
) -> tuple[dict[str, list[Any]], list[tuple[int, LabTest, str]]]:
    """Diagnosis and prior encounters of the notifiable cases (unsorted columns)."""
    cases = result.cases
    city = result.city
    end_minute = result.n_days * 1440 - 1
    seen = np.flatnonzero(cases["diagnosis_minute"] <= end_minute)
    cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
    labs: list[tuple[int, LabTest, str]] = []
    cards = result.cards
    card_no = np.array(
        [cards[int(c)]["card_number"] if c >= 0 else "" for c in cases["card"]], dtype=object
    )
    township_idx = {c: i for i, c in enumerate(city.codes)}
    for key in sorted(set(cases["disease"][seen].tolist())):
        pres = clinical.presentations.get(str(key))
        if pres is None:
            continue
        rows = seen[cases["disease"][seen] == key]
        n = rows.size
        leaf = cases["disease_code"][rows].astype(str)
        icd = np.empty(n, dtype=object)
        for code in sorted(set(leaf.tolist())):
            sel = leaf == code
            icd[sel] = _choice(rng, pres.codes_for(code), int(sel.sum()))
        confirmed = cases["classification"][rows].astype(str) == "3"
        if pres.confirmed_icd10:
            icd[confirmed] = _choice(rng, pres.confirmed_icd10, int(confirmed.sum()))
        chronic = np.array([c == "2" for c in cases["chronicity"][rows]], dtype=bool)
        if pres.chronic_icd10:
            icd[chronic] = _choice(rng, pres.chronic_icd10, int(chronic.sum()))
        ages = cases["age"][rows]
        onset = cases["onset"][rows]
        diag_minute = cases["diagnosis_minute"][rows]
        first = len(cols["minute"])
        _append(
            cols,
            kind=["diagnosis"] * n,
            minute=diag_minute.tolist(),
            org=cases["org"][rows].tolist(),
            township=[township_idx[t] for t in cases["township"][rows]],
            age=ages.tolist(),
            sex=cases["sex"][rows].tolist(),
            icd10=icd.tolist(),
            diagnosis=[pres.names[c] for c in icd],
            complaint=_complaints(rng, pres.complaints, diag_minute // 1440 - onset),
            temperature=_temperatures(
                rng, np.full(n, pres.fever.share), np.full(n, pres.fever.mean)
            ).tolist(),
            department=_departments(rng, pres.department, ages).tolist(),
            case=rows.tolist(),
            true_disease=leaf.tolist(),
            card_number=card_no[rows].tolist(),
            outbreak=cases["outbreak"][rows].tolist(),
        )
        labs += _lab_orders(rng, pres, leaf, confirmed, cases["subtype"][rows], first)
        # an earlier visit with an unspecific diagnosis
        wait = diag_minute // 1440 - onset
        earlier = np.flatnonzero((wait >= 2) & (rng.random(n) < cfg.encounters.prior_visit_share))
        # only illnesses that bring a patient with symptoms of their syndrome, or fever
        if earlier.size and (pres.syndrome != "none" or pres.fever.share >= 0.5):
            day = onset[earlier] + (rng.random(earlier.size) * wait[earlier]).astype(np.int64)
            day = np.minimum(day, diag_minute[earlier] // 1440 - 1)
            hour = rng.choice(24, earlier.size, p=_HOUR_WEIGHTS)
            code, name = PRIOR_DIAGNOSIS[pres.syndrome]
            towns = [township_idx[t] for t in cases["township"][rows[earlier]]]
            # at the township's health centre if there is one
            org = [
                reps[0].code if (reps := city.township_reporters.get(t)) else o
                for t, o in zip(towns, cases["org"][rows[earlier]], strict=True)
            ]
            _append(
                cols,
                kind=["prior"] * earlier.size,
                minute=(day * 1440 + hour * 60 + rng.integers(0, 60, earlier.size)).tolist(),
                org=org,
                township=towns,
                age=ages[earlier].tolist(),
                sex=cases["sex"][rows[earlier]].tolist(),
                icd10=[code] * earlier.size,
                diagnosis=[name] * earlier.size,
                complaint=_complaints(rng, pres.complaints, day - onset[earlier]),
                temperature=_temperatures(
                    rng,
                    np.full(earlier.size, pres.fever.share),
                    np.full(earlier.size, pres.fever.mean),
                ).tolist(),
                department=_departments(rng, {"全科": 1.0}, ages[earlier]).tolist(),
                case=rows[earlier].tolist(),
                true_disease=leaf[earlier].tolist(),
                card_number=[""] * earlier.size,
                outbreak=cases["outbreak"][rows[earlier]].tolist(),
            )
    return cols, labs


def _lab_orders(
    rng: np.random.Generator,
    pres: Presentation,
    leaf: NDArray[Any],
    confirmed: NDArray[np.bool_],
    subtype: NDArray[Any],
    first: int,
) -> list[tuple[int, LabTest, str]]:
    """The tests of each case's diagnosis encounter (row ``first + j``) and their results."""
    orders: list[tuple[int, int, LabTest, str]] = []
    wanted: list[tuple[NDArray[np.int64], LabTest]] = []
    for code, tests in pres.labs.always.items():
        rows = np.flatnonzero(leaf == code)
        wanted += [(rows, t) for t in tests]
    rows_confirmed = np.flatnonzero(confirmed)
    wanted += [(rows_confirmed, t) for t in pres.labs.confirmed]
    for order, (rows, t) in enumerate(wanted):
        if rows.size == 0:
            continue
        keys = list(t.results)
        w = np.array([t.results[k] for k in keys], dtype=np.float64)
        picked = np.array(keys, dtype=object)[rng.choice(len(keys), rows.size, p=w / w.sum())]
        # a typed virus (EV71, CA16) shows in its own result
        for sub, marker in _SUBTYPE_RESULT.items():
            match = [k for k in keys if marker in k]
            if match:
                picked[subtype[rows] == sub] = match[0]
        orders += [
            (int(j), order, t, str(r)) for j, r in zip(rows.tolist(), picked.tolist(), strict=True)
        ]
    orders.sort(key=lambda o: (o[0], o[1]))
    return [(first + j, t, r) for j, _, t, r in orders]


_COLUMNS = (
    "kind", "minute", "org", "township", "age", "sex", "icd10", "diagnosis", "complaint",
    "temperature", "department", "case", "true_disease", "card_number", "outbreak",
)  # fmt: skip


def _append(cols: dict[str, list[Any]], **values: list[Any]) -> None:
    for k in _COLUMNS:
        cols[k].extend(values[k])


def _background_rows(
    result: SimulationResult,
    clinical: ClinicalConfig,
    cfg: StreamsConfig,
    ill: CommunityIllness,
    rng: np.random.Generator,
) -> dict[str, list[Any]]:
    """Non-notifiable visits: Poisson per condition, township and day."""
    city = result.city
    n_days = result.n_days
    doy = day_of_year(result.start, n_days)
    pop = city.population[:, None]
    day_factor = _day_factor(result)[None, :]
    com = cfg.community
    bg_rate = {
        "respiratory": sum(s.rate for s in com.respiratory.pathogens.values()),
        "gi": com.gi.rate,
        "rash": com.rash.rate,
    }
    ratio = {
        s: ill.episodes[s] / (pop * bg_rate[s] / 1000 / 365.25) if bg_rate[s] > 0 else None
        for s in SYNDROMES
    }
    scale = cfg.encounters.background_scale
    cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
    county_share = cfg.encounters.county_hospital_share
    for cond in clinical.background:
        per_day = pop * cond.rate * scale / 1000 / 365.25
        r = ratio.get(cond.syndrome)
        if r is not None:
            mu = per_day * r
        else:
            mu = per_day * seasonal_factor(doy, [Harmonic(cond.amplitude, cond.peak_day)])[None, :]
        counts = rng.poisson(mu * day_factor)
        ti, day = np.nonzero(counts)
        reps = counts[ti, day]
        town = np.repeat(ti, reps)
        days = np.repeat(day, reps).astype(np.int64)
        n = town.size
        if n == 0:
            continue
        _append(cols, **_background_columns(rng, result, cond, town, days, county_share))
    return cols


def _background_columns(
    rng: np.random.Generator,
    result: SimulationResult,
    cond: BackgroundCondition,
    town: NDArray[np.int64],
    days: NDArray[np.int64],
    county_share: float,
) -> dict[str, list[Any]]:
    city = result.city
    n = town.size
    w = np.array([b[2] for b in cond.age], dtype=np.float64)
    band = rng.choice(len(cond.age), n, p=w / w.sum())
    lo = np.array([b[0] for b in cond.age])[band]
    hi = np.array([b[1] for b in cond.age])[band]
    ages = np.floor(lo + rng.random(n) * (hi - lo)).astype(np.int64)
    sex = np.where(rng.random(n) < cond.male, "1", "2")
    to_county = rng.random(n) < county_share
    pick = rng.random(n)
    orgs = np.empty(n, dtype=object)
    for t in np.unique(town).tolist():
        sel = np.flatnonzero(town == t)
        local = city.township_reporters.get(t)
        county = city.county_reporters.get(city.county[t]) or city.all_reporters()
        go_county = to_county[sel] if local else np.ones(sel.size, dtype=bool)
        for pool, rows in ((local, sel[~go_county]), (county, sel[go_county])):
            if rows.size == 0 or not pool:
                continue
            codes = np.array([r.code for r in pool], dtype=object)
            orgs[rows] = codes[(pick[rows] * codes.size).astype(np.int64)]
    hour = rng.choice(24, n, p=_HOUR_WEIGHTS)
    minute = days * 1440 + hour * 60 + rng.integers(0, 60, n)
    return {
        "kind": ["background"] * n,
        "minute": minute.tolist(),
        "org": orgs.tolist(),
        "township": town.tolist(),
        "age": ages.tolist(),
        "sex": sex.tolist(),
        "icd10": [cond.icd10] * n,
        "diagnosis": [cond.name] * n,
        "complaint": _complaints(rng, cond.complaints, rng.integers(1, 8, n)),
        "temperature": _temperatures(
            rng, np.full(n, cond.fever.share), np.full(n, cond.fever.mean)
        ).tolist(),
        "department": _departments(rng, cond.department, ages).tolist(),
        "case": [-1] * n,
        "true_disease": [""] * n,
        "card_number": [""] * n,
        "outbreak": [0] * n,
    }


def build_encounters(
    result: SimulationResult,
    clinical: ClinicalConfig,
    cfg: StreamsConfig,
    ill: CommunityIllness,
) -> Encounters:
    """All encounters of the run in visit order, with ids and lab results."""
    root = np.random.SeedSequence([result.seed, 0xE4C0])
    s_case, s_bg = root.spawn(2)
    rng_case = np.random.default_rng(s_case)
    cols, labs = _case_rows(result, clinical, cfg, rng_case)
    bg = _background_rows(result, clinical, cfg, ill, np.random.default_rng(s_bg))
    for k in _COLUMNS:
        cols[k].extend(bg[k])
    minute = np.array(cols["minute"], dtype=np.int64)
    org = np.array(cols["org"], dtype=object)
    order = np.lexsort((np.arange(minute.size), org.astype(str), minute))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)

    def col(name: str, dtype: Any = object) -> NDArray[Any]:
        return np.array(cols[name], dtype=dtype)[order]

    enc = Encounters(
        kind=col("kind"),
        minute=minute[order],
        org=org[order],
        township=col("township", np.int64),
        age=col("age", np.int64),
        sex=col("sex"),
        icd10=col("icd10"),
        diagnosis=col("diagnosis"),
        complaint=col("complaint"),
        temperature=col("temperature", np.float64),
        department=col("department"),
        case=col("case", np.int64),
        true_disease=col("true_disease"),
        card_number=col("card_number"),
        outbreak=col("outbreak", np.int64),
    )
    enc.encounter_id = _visit_numbers(enc.org)
    enc.labs = sorted(
        (
            LabResult(
                int(rank[r]),
                t,
                res,
                int(minute[r]) + 30,
                int(minute[r])
                + 30
                + (72 if "CULT" in t.code or t.code.endswith("-BC") else 6) * 60,
            )
            for r, t, res in labs
        ),
        key=lambda lab: (lab.row, lab.test.code),
    )
    return enc


def _turnaround_hours(test: LabTest) -> int:
    """Hours from specimen to report: three days for cultures, six hours otherwise."""
    return 72 if "CULT" in test.code or test.code.endswith("-BC") else 6


def _visit_numbers(org: NDArray[Any]) -> NDArray[Any]:
    """``{org}-{n:08d}`` with n the running number of the visit at its hospital."""
    codes = org.astype(str)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, codes.size]))
    number = np.empty(codes.size, dtype=np.int64)
    number[order] = np.arange(codes.size) - run_start + 1
    out = np.empty(codes.size, dtype=object)
    out[:] = [f"{o}-{k:08d}" for o, k in zip(codes.tolist(), number.tolist(), strict=True)]
    return out
