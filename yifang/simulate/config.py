"""The city and disease calibration configs, and the catalog facts the simulator needs.

A city is described by a YAML file (``data/zhongwei.yaml`` is the default): its counties and
townships with flags, the age structure, how places and hospitals are generated, how
reporting behaves, how many outbreaks to inject and how many cards carry errors. Disease
calibration (``data/diseases.yaml``) gives each disease's annual rate per 100,000, its
seasonality, dispersion and case mix. Unknown keys are refused, so a misspelt option is an
error rather than a silently ignored setting.

Codes, populations, organisations, incubation periods and serial intervals come from the
catalog (:class:`CatalogFacts`), read from the database when there is one or else from the
catalog's data files loaded into a throw-away in-memory database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.simulate.counts import Harmonic

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_CITY = DATA_DIR / "zhongwei.yaml"
DEFAULT_DISEASES = DATA_DIR / "diseases.yaml"
DEFAULT_CLINICAL = DATA_DIR / "clinical.yaml"
DEFAULT_STREAMS = DATA_DIR / "streams.yaml"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class County(_Strict):
    code: str = Field(pattern=r"^\d{6}$")
    name: str
    population: int = Field(gt=0)


class Township(_Strict):
    code: str = Field(pattern=r"^\d{9}$")
    name: str
    weight: float = Field(gt=0)
    urban: bool = False
    herding: bool = False
    hui_share: float = Field(default=0.0, ge=0, le=1)
    lon: float
    lat: float

    @property
    def county_code(self) -> str:
        return self.code[:6]


class AgeBand(_Strict):
    from_: int = Field(alias="from", ge=0)
    to: int = Field(gt=0)
    share: float = Field(ge=0)


class PlaceRule(_Strict):
    per_10k: float = Field(ge=0)
    min: int = Field(default=0, ge=0)
    enrol_age: tuple[int, int] | None = None
    enrol_rate: float = Field(default=1.0, ge=0, le=1)
    capacity_per_10k: float | None = None
    name: str


class HospitalRules(_Strict):
    township_health_centre: str = "{township}卫生院"
    county_hospital: str = "{county}人民医院"
    county_hospital_share: float = Field(default=0.45, ge=0, le=1)


class LogNormalSpec(_Strict):
    median: float = Field(gt=0)
    dispersion: float = Field(ge=1)


class Reporting(_Strict):
    weekend_diagnosis_factor: float = Field(default=0.55, ge=0, le=1)
    spring_festival_factor: float = Field(default=0.45, ge=0, le=1)
    holiday_days_after_new_year: int = Field(default=6, ge=0)
    review_lag_hours: LogNormalSpec = LogNormalSpec(median=6, dispersion=2.5)
    submitted_days: int = Field(default=2, ge=0)
    late_report_share: float = Field(default=0.03, ge=0, le=1)
    suspected_confirmed_lag_days: int = 0


class OutbreakRule(_Strict):
    per_year: float = Field(ge=0)
    diseases: list[str]
    size: tuple[int, int] | None = None
    incubation_median_days: float | None = None
    incubation_dispersion: float | None = None
    rt: tuple[float, float] | None = None
    seed_cases: tuple[int, int] | None = None
    max_cases: int | None = None
    attack_cap: float | None = None
    susceptible: tuple[float, float] | None = None
    townships: tuple[int, int] | None = None
    relative_excess: tuple[float, float] | None = None
    days: tuple[int, int] | None = None


class Outbreaks(_Strict):
    point_source: OutbreakRule | None = None
    propagated: OutbreakRule | None = None
    kindergarten: OutbreakRule | None = None
    school: OutbreakRule | None = None
    spatial: OutbreakRule | None = None
    ensure_recent: bool = True


class Errors(_Strict):
    share: float = Field(default=0.02, ge=0, le=1)
    mix: dict[str, float] = Field(default_factory=dict)


class CityConfig(_Strict):
    """A whole city description (see ``data/zhongwei.yaml``)."""

    code: str
    name: str
    name_en: str = ""
    province_code: str
    timezone: str = "Asia/Shanghai"
    reference_year: int
    counties: list[County]
    townships: list[Township]
    age_structure: list[AgeBand]
    male_share: float = Field(ge=0, le=1)
    places: dict[str, PlaceRule]
    hospitals: HospitalRules = HospitalRules()
    reporting: Reporting = Reporting()
    outbreaks: Outbreaks = Outbreaks()
    errors: Errors = Errors()

    @model_validator(mode="after")
    def _townships_in_counties(self) -> CityConfig:
        counties = {c.code for c in self.counties}
        for t in self.townships:
            if t.county_code not in counties:
                raise ValueError(f"township {t.code} {t.name}: county {t.county_code} not listed")
        return self


class DiseaseCalibration(_Strict):
    """Baseline of one disease (see ``data/diseases.yaml``)."""

    key: str
    code: str | dict[str, float]
    rate: float = Field(ge=0, description="annual cases per 100,000 in the reference year")
    source: str
    phi: float = Field(default=1.3, ge=1)
    trend: float = 0.0
    seasonality: list[dict[str, float]] = Field(default_factory=list)
    peak_months: list[int] = Field(default_factory=list)
    age: list[tuple[int, int, float]]
    male: float = Field(default=0.52, ge=0, le=1)
    occupations: dict[str, float] = Field(default_factory=dict)
    multipliers: dict[str, float] = Field(default_factory=dict)
    diagnosis_delay: LogNormalSpec = LogNormalSpec(median=2.0, dispersion=2.0)
    classification: dict[str, float] = Field(default_factory=dict)
    chronicity: dict[str, float] = Field(default_factory=dict)
    herding_link: bool = False

    def codes(self) -> dict[str, float]:
        """Catalog disease code(s) the cards carry, with relative weights."""
        return {self.code: 1.0} if isinstance(self.code, str) else dict(self.code)

    def harmonics(self) -> list[Harmonic]:
        out = []
        for h in self.seasonality:
            unknown = set(h) - {"amplitude", "peak_day", "order"}
            if unknown:
                raise ValueError(f"{self.key}: unknown seasonality keys {sorted(unknown)}")
            out.append(
                Harmonic(float(h["amplitude"]), float(h["peak_day"]), int(h.get("order", 1)))
            )
        return out


# ---------------------------------------------------------------------------------------
# Clinical presentation (clinical.yaml) and the other data streams (streams.yaml)
# ---------------------------------------------------------------------------------------

Syndrome = Literal["respiratory", "gi", "rash", "none"]
SYNDROMES: tuple[str, ...] = ("respiratory", "gi", "rash")


class Fever(_Strict):
    share: float = Field(ge=0, le=1)
    mean: float = Field(ge=36.0, le=42)


class LabTest(_Strict):
    """One laboratory test and its possible results (relative weights)."""

    code: str
    name: str
    specimen: str
    results: dict[str, float]
    positive: bool = True


class LabRules(_Strict):
    confirmed: list[LabTest] = Field(default_factory=list)
    always: dict[str, list[LabTest]] = Field(default_factory=dict)


class Presentation(_Strict):
    """How a notifiable disease looks at the visit where it is diagnosed."""

    icd10: dict[str, float | dict[str, float]]
    confirmed_icd10: dict[str, float] | None = None
    chronic_icd10: dict[str, float] | None = None
    names: dict[str, str]
    complaints: list[str] = Field(min_length=1)
    fever: Fever
    department: dict[str, float]
    syndrome: Syndrome
    community_factor: float = Field(default=1.0, ge=0)
    absence_days: tuple[int, int] | None = None
    labs: LabRules = LabRules()

    def codes_for(self, leaf: str) -> dict[str, float]:
        """ICD-10 codes (weights) of catalog leaf disease ``leaf``."""
        per_leaf = {k: v for k, v in self.icd10.items() if isinstance(v, dict)}
        if per_leaf:
            if leaf not in per_leaf:
                raise ConfigError(f"clinical.yaml: no icd10 codes for {leaf}")
            return per_leaf[leaf]
        return {k: float(v) for k, v in self.icd10.items() if not isinstance(v, dict)}

    def all_codes(self) -> set[str]:
        out: set[str] = set()
        for k, v in self.icd10.items():
            out |= set(v) if isinstance(v, dict) else {k}
        out |= set(self.confirmed_icd10 or {}) | set(self.chronic_icd10 or {})
        return out


class BackgroundCondition(_Strict):
    """A non-notifiable condition seen in the hospitals (rate: visits per 1,000 a year)."""

    icd10: str
    name: str
    syndrome: Syndrome
    rate: float = Field(ge=0)
    amplitude: float = 0.0
    peak_day: float = 0.0
    age: list[tuple[int, int, float]]
    male: float = Field(ge=0, le=1)
    fever: Fever
    department: dict[str, float]
    complaints: list[str] = Field(min_length=1)


class ClinicalConfig(_Strict):
    presentations: dict[str, Presentation]
    background: list[BackgroundCondition]

    @model_validator(mode="after")
    def _names_for_codes(self) -> ClinicalConfig:
        for key, p in self.presentations.items():
            missing = p.all_codes() - set(p.names)
            if missing:
                raise ValueError(f"presentations.{key}: no names for {sorted(missing)}")
        return self


class Seasonal(_Strict):
    """Episodes per 1,000 residents a year with one annual harmonic."""

    rate: float = Field(ge=0)
    amplitude: float = 0.0
    peak_day: float = 0.0


class RespiratoryCommunity(_Strict):
    fever_share: float = Field(ge=0, le=1)
    ili_share: float = Field(ge=0, le=1)
    children_factor: float = Field(default=1.0, gt=0)
    pathogens: dict[str, Seasonal]


class SyndromeCommunity(Seasonal):
    fever_share: float = Field(ge=0, le=1)
    children_factor: float = Field(default=1.0, gt=0)


class Community(_Strict):
    respiratory: RespiratoryCommunity
    gi: SyndromeCommunity
    rash: SyndromeCommunity


class EncounterVolume(_Strict):
    background_scale: float = Field(default=1.0, ge=0)
    county_hospital_share: float = Field(default=0.45, ge=0, le=1)
    prior_visit_share: float = Field(default=0.3, ge=0, le=1)


class SchoolRules(_Strict):
    other_absence_rate: float = Field(ge=0, le=1)
    summer: tuple[tuple[int, int], tuple[int, int]]
    winter_from_new_year: tuple[int, int]
    holidays: list[tuple[tuple[int, int], tuple[int, int]]] = Field(default_factory=list)


class PharmacyRules(_Strict):
    fever_cough_share: float = Field(ge=0, le=1)
    antidiarrhoeal_share: float = Field(ge=0, le=1)
    fever_cough_other: float = Field(ge=0)
    antidiarrhoeal_other: float = Field(ge=0)
    other_sales: float = Field(ge=0)
    phi: float = Field(default=1.0, ge=1)


class SentinelRules(_Strict):
    hospitals: list[str] = Field(default_factory=list)
    visit_share: float = Field(ge=0, le=1)
    fever_clinic_share: float = Field(ge=0, le=1)
    outpatients_per_10k: float = Field(gt=0)
    weekend_factor: float = Field(default=1.0, ge=0)
    lab_tests_per_day: int = Field(ge=0)
    flu_b_share: float = Field(ge=0, le=1)


class LivestockRules(_Strict):
    sampling_days: list[int]
    animals_per_sampling: int = Field(gt=0)
    prevalence: float = Field(ge=0, le=1)
    lead_weeks: int = Field(ge=0)
    cluster_factor: float = Field(ge=1)


class StreamsConfig(_Strict):
    closed_outbreak_factor: float = Field(default=1.0, ge=0)
    community: Community
    encounters: EncounterVolume = EncounterVolume()
    schools: SchoolRules
    pharmacies: PharmacyRules
    sentinels: SentinelRules
    livestock: LivestockRules


def load_clinical(path: Path | str | None = None) -> ClinicalConfig:
    """Read and validate the clinical presentations and background conditions."""
    p = Path(path) if path else DEFAULT_CLINICAL
    try:
        return ClinicalConfig.model_validate(_read_yaml(p))
    except ValidationError as exc:
        raise _explain(p, exc) from exc


def load_streams(path: Path | str | None = None) -> StreamsConfig:
    """Read and validate the data-stream parameters."""
    p = Path(path) if path else DEFAULT_STREAMS
    try:
        return StreamsConfig.model_validate(_read_yaml(p))
    except ValidationError as exc:
        raise _explain(p, exc) from exc


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def _explain(path: Path, exc: ValidationError) -> ConfigError:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return ConfigError(f"{path}: " + "; ".join(parts))


def load_city(path: Path | str | None = None) -> CityConfig:
    """Read and validate a city config (default: Zhongwei)."""
    p = Path(path) if path else DEFAULT_CITY
    try:
        return CityConfig.model_validate(_read_yaml(p))
    except ValidationError as exc:
        raise _explain(p, exc) from exc


def load_diseases(path: Path | str | None = None) -> list[DiseaseCalibration]:
    """Read the disease calibration, filling each entry's gaps from ``defaults``."""
    p = Path(path) if path else DEFAULT_DISEASES
    raw = _read_yaml(p)
    if not isinstance(raw, dict) or "diseases" not in raw:
        raise ConfigError(f"{p}: expected a mapping with a 'diseases' list")
    defaults = raw.get("defaults") or {}
    out = []
    for i, entry in enumerate(raw["diseases"]):
        merged = {**defaults, **entry}
        try:
            out.append(DiseaseCalibration.model_validate(merged))
        except ValidationError as exc:
            raise ConfigError(
                f"{p}: diseases[{i}] ({entry.get('key')}): {_explain(p, exc)}"
            ) from exc
    keys = [d.key for d in out]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{p}: duplicate disease keys")
    return out


# ---------------------------------------------------------------------------------------
# Catalog facts
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiseaseFacts:
    """What the simulator needs from a catalog disease (times in days, limits in hours)."""

    code: str
    name_zh: str
    incubation_mean_days: float | None = None
    serial_interval_mean_days: float | None = None
    serial_interval_sd_days: float | None = None
    report_limit_hours: int = 24
    review_limit_hours: int = 24
    classifications: tuple[str, ...] = ()
    chronicity: tuple[str, ...] = ()
    icd10: str | None = None


@dataclass(frozen=True)
class OrganisationFacts:
    code: str
    name: str
    kind: str
    region_code: str


@dataclass
class CatalogFacts:
    """Diseases, township populations and organisations as the catalog has them."""

    diseases: dict[str, DiseaseFacts] = field(default_factory=dict)
    populations: dict[str, int] = field(default_factory=dict)
    organisations: list[OrganisationFacts] = field(default_factory=list)
    regions: set[str] = field(default_factory=set)


def catalog_from_session(session: Session, year: int | None = None) -> CatalogFacts:
    """Read the catalog tables of the database ``session`` is bound to."""
    from yifang.catalog.models import Disease, Organisation, Population, Region

    facts = CatalogFacts()
    for d in session.scalars(select(Disease).where(Disease.active.is_(True))):
        facts.diseases[d.code] = DiseaseFacts(
            code=d.code,
            name_zh=d.name_zh,
            incubation_mean_days=d.incubation_mean_days,
            serial_interval_mean_days=d.serial_interval_mean_days,
            serial_interval_sd_days=d.serial_interval_sd_days,
            report_limit_hours=d.report_limit_hours or 24,
            review_limit_hours=d.review_limit_hours or 24,
            classifications=tuple(d.classifications or ()),
            chronicity=tuple(d.chronicity or ()),
            icd10=d.icd10,
        )
    rows = session.execute(
        select(Population.region_code, Population.year, Population.count).where(
            Population.sex == "T", Population.age_from == 0, Population.age_to.is_(None)
        )
    ).all()
    best: dict[str, tuple[int, int]] = {}
    for code, yr, count in rows:
        score = abs(yr - year) if year is not None else -yr
        if code not in best or score < best[code][0]:
            best[code] = (score, count)
    facts.populations = {k: v[1] for k, v in best.items()}
    for o in session.scalars(select(Organisation).where(Organisation.active.is_(True))):
        facts.organisations.append(OrganisationFacts(o.code, o.name, o.kind, o.region_code))
    facts.regions = set(session.scalars(select(Region.code)))
    return facts


def catalog_from_files(year: int | None = None) -> CatalogFacts:
    """Load the catalog data files into an in-memory database and read them back.

    Returns empty facts (and logs why) when the catalog loader is not available, so that
    file output still works from the city config alone.
    """
    try:
        from yifang.catalog.service import load_all
    except ImportError:
        log.warning("catalog loader not available; using the city config alone")
        return CatalogFacts()
    from sqlalchemy import create_engine

    import yifang.catalog.models  # noqa: F401  (registers the catalog tables)
    from yifang.core.db import Base

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        load_all(session)
        session.commit()
        facts = catalog_from_session(session, year)
    engine.dispose()
    return facts
