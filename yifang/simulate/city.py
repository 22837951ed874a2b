"""The simulated city as arrays: townships, their populations, places and hospitals.

Built from a :class:`~yifang.simulate.config.CityConfig` and the catalog facts. Township
populations come from the catalog when it has them, otherwise the county census total is
split by the config's weights. Places (kindergartens, schools, pharmacies, elderly-care
homes) are generated per township from the config's rules with a fixed generator, so the
same city always has the same places whatever the run's seed; enrolment follows the age
structure. Reporting organisations come from the catalog (township health centres in a
township, hospitals of a county); where the catalog has none the config's name patterns
make synthetic ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from yifang.simulate.config import CatalogFacts, CityConfig, OrganisationFacts

log = logging.getLogger(__name__)

SCHOOL_KINDS = ("kindergarten", "primary_school", "middle_school")
_LOCAL_KINDS = ("township", "clinic", "community", "village")
_NON_REPORTING = ("cdc", "department", "bureau", "government", "health_commission")


@dataclass(frozen=True)
class Place:
    """A kindergarten, school, pharmacy or elderly-care home in township ``township``."""

    id: int
    kind: str
    name: str
    township: int
    capacity: int
    age_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class Reporter:
    """A reporting organisation; ``township`` is -1 for county- or city-level ones."""

    code: str
    name: str
    county: str
    township: int
    synthetic: bool = False


@dataclass
class CityModel:
    """Everything about the city that does not change from run to run."""

    config: CityConfig
    codes: list[str]
    names: list[str]
    county: list[str]
    county_names: dict[str, str]
    population: NDArray[np.float64]
    urban: NDArray[np.bool_]
    herding: NDArray[np.bool_]
    hui_share: NDArray[np.float64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    places: list[Place] = field(default_factory=list)
    township_reporters: dict[int, list[Reporter]] = field(default_factory=dict)
    county_reporters: dict[str, list[Reporter]] = field(default_factory=dict)
    population_source: str = "config"

    @property
    def n(self) -> int:
        return len(self.codes)

    def index(self, code: str) -> int:
        return self.codes.index(code)

    def neighbours(self, i: int, k: int) -> list[int]:
        """The ``k`` townships nearest to township ``i`` (by approximate coordinates)."""
        d = np.hypot(
            (self.lon - self.lon[i]) * np.cos(np.radians(self.lat[i])), self.lat - self.lat[i]
        )
        order = np.argsort(d, kind="stable")
        return [int(j) for j in order if j != i][:k]

    def places_of(self, kind: str) -> list[Place]:
        return [p for p in self.places if p.kind == kind]

    def all_reporters(self) -> list[Reporter]:
        seen: dict[str, Reporter] = {}
        for lst in self.township_reporters.values():
            for r in lst:
                seen.setdefault(r.code, r)
        for lst in self.county_reporters.values():
            for r in lst:
                seen.setdefault(r.code, r)
        return list(seen.values())


def _populations(cfg: CityConfig, facts: CatalogFacts) -> tuple[NDArray[np.float64], str]:
    weights = np.array([t.weight for t in cfg.townships])
    pop = np.zeros(len(cfg.townships))
    for c in cfg.counties:
        idx = [i for i, t in enumerate(cfg.townships) if t.county_code == c.code]
        if idx:
            pop[idx] = c.population * weights[idx] / weights[idx].sum()
    from_catalog = [facts.populations.get(t.code) for t in cfg.townships]
    if all(v is not None and v > 0 for v in from_catalog):
        return np.array(from_catalog, dtype=np.float64), "catalog"
    if any(v is not None for v in from_catalog):
        log.warning("catalog has populations for some townships only; using the config split")
    return np.round(pop), "config"


def _places(cfg: CityConfig, pop: NDArray[np.float64]) -> list[Place]:
    rng = np.random.default_rng([int(cfg.code), 0x91ACE])
    bands = cfg.age_structure
    places: list[Place] = []
    for i, t in enumerate(cfg.townships):
        for kind, rule in cfg.places.items():
            n = max(rule.min, round(pop[i] / 10_000 * rule.per_10k))
            if n == 0:
                continue
            if rule.enrol_age is not None:
                a0, a1 = rule.enrol_age
                share = sum(
                    b.share * max(0, min(a1, b.to) - max(a0, b.from_)) / (b.to - b.from_)
                    for b in bands
                )
                total = pop[i] * share * rule.enrol_rate
            elif rule.capacity_per_10k is not None:
                total = pop[i] / 10_000 * rule.capacity_per_10k * n
            else:
                total = 0.0
            sizes = rng.dirichlet(np.full(n, 4.0)) * total if total > 0 else np.zeros(n)
            for j in range(n):
                places.append(
                    Place(
                        id=len(places),
                        kind=kind,
                        name=rule.name.format(township=t.name, n=_cn_number(j + 1)),
                        township=i,
                        capacity=max(round(sizes[j]), 0),
                        age_range=rule.enrol_age,
                    )
                )
    return places


_DIGITS = "零一二三四五六七八九"


def _cn_number(n: int) -> str:
    """1 → 一, 12 → 十二, 20 → 二十 (enough for numbering places)."""
    if n < 10:
        return _DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _DIGITS[tens]
    return head + "十" + (_DIGITS[ones] if ones else "")


def _is_reporting(org: OrganisationFacts) -> bool:
    kind = org.kind.lower()
    return not any(k in kind for k in _NON_REPORTING)


def _reporters(
    cfg: CityConfig, codes: list[str], facts: CatalogFacts
) -> tuple[dict[int, list[Reporter]], dict[str, list[Reporter]]]:
    township_of = {c: i for i, c in enumerate(codes)}
    county_names = {c.code: c.name for c in cfg.counties}
    by_township: dict[int, list[Reporter]] = {}
    by_county: dict[str, list[Reporter]] = {}
    for org in sorted(facts.organisations, key=lambda o: o.code):
        if not _is_reporting(org):
            continue
        region = org.region_code
        local = any(k in org.kind.lower() for k in _LOCAL_KINDS)
        if local and region in township_of:
            i = township_of[region]
            by_township.setdefault(i, []).append(Reporter(org.code, org.name, region[:6], i))
        elif region[:6] in county_names:
            # hospitals serve their whole county wherever in it they stand
            by_county.setdefault(region[:6], []).append(
                Reporter(org.code, org.name, region[:6], -1)
            )
        elif cfg.code.startswith(region) and cfg.counties:
            seat = cfg.counties[0].code  # city-level hospitals serve the seat county
            by_county.setdefault(seat, []).append(Reporter(org.code, org.name, seat, -1))
    for i, t in enumerate(cfg.townships):
        # without a catalog every township gets its health centre; with one, a township
        # that has no local organisation reports through its county's hospitals
        if i not in by_township and not facts.organisations:
            name = cfg.hospitals.township_health_centre.format(township=t.name)
            by_township[i] = [Reporter(f"SIM{t.code}", name, t.county_code, i, synthetic=True)]
    for c in cfg.counties:
        if c.code not in by_county:
            name = cfg.hospitals.county_hospital.format(county=c.name)
            by_county[c.code] = [Reporter(f"SIM{c.code}H", name, c.code, -1, synthetic=True)]
    return by_township, by_county


def assemble_city(cfg: CityConfig, facts: CatalogFacts) -> CityModel:
    """Assemble the city's arrays, places and reporting organisations."""
    ts = cfg.townships
    if facts.regions:
        missing = [t.code for t in ts if t.code not in facts.regions]
        if missing:
            log.warning("townships not in the catalog's regions: %s", ", ".join(missing))
    pop, source = _populations(cfg, facts)
    codes = [t.code for t in ts]
    by_township, by_county = _reporters(cfg, codes, facts)
    return CityModel(
        config=cfg,
        codes=codes,
        names=[t.name for t in ts],
        county=[t.county_code for t in ts],
        county_names={c.code: c.name for c in cfg.counties},
        population=pop,
        urban=np.array([t.urban for t in ts]),
        herding=np.array([t.herding for t in ts]),
        hui_share=np.array([t.hui_share for t in ts]),
        lon=np.array([t.lon for t in ts]),
        lat=np.array([t.lat for t in ts]),
        places=_places(cfg, pop),
        township_reporters=by_township,
        county_reporters=by_county,
        population_source=source,
    )
