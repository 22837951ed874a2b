"""The simulated city: calibration honesty, outbreaks and their truth, output, determinism."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

import yifang.simulate.models as sim_models
from yifang.simulate import people
from yifang.simulate.city import assemble_city
from yifang.simulate.config import (
    CatalogFacts,
    ConfigError,
    catalog_from_files,
    load_city,
    load_diseases,
)
from yifang.simulate.counts import negative_binomial
from yifang.simulate.engine import expected_baseline, simulate_city, township_multipliers
from yifang.simulate.output import write_files

REF = date(2023, 1, 1)


@pytest.fixture(scope="module")
def facts() -> CatalogFacts:
    return catalog_from_files(2023)


@pytest.fixture(scope="module")
def city(facts: CatalogFacts):
    return assemble_city(load_city(), facts)


@pytest.fixture(scope="module")
def diseases():
    return load_diseases()


@pytest.fixture(scope="module")
def run(city, diseases, facts):
    return simulate_city(city, diseases, facts, date(2023, 1, 1), date(2023, 6, 30), seed=3)


# --- config ---------------------------------------------------------------------------


def test_city_config_matches_census_and_catalog(city, facts) -> None:
    assert city.n == 46
    assert abs(city.population.sum() - 1_067_300) / 1_067_300 < 0.05
    if facts.populations:
        assert city.population_source == "catalog"
    assert city.herding.sum() > 10 and city.urban.sum() >= 4
    kinds = {p.kind for p in city.places}
    assert {"kindergarten", "primary_school", "pharmacy"} <= kinds
    assert all(p.capacity > 0 for p in city.places if p.kind == "kindergarten")


def test_unknown_config_keys_are_refused(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "yifang/simulate/data/zhongwei.yaml").read_text("utf-8")
    bad = tmp_path / "city.yaml"
    bad.write_text(text.replace("male_share:", "male_shrae:"), "utf-8")
    with pytest.raises(ConfigError, match="male_shrae"):
        load_city(bad)


# --- calibration: honest statistics over many seeds ----------------------------------


def _baseline_year(city, dis, seeds: int) -> np.ndarray:
    """Township × day counts of the reference year for ``seeds`` seeds: (seeds, days)."""
    out = []
    for s in range(seeds):
        rng = np.random.default_rng(s)
        mult = township_multipliers(city, dis, rng)
        mu = expected_baseline(city, dis, REF, 365, mult)
        out.append(negative_binomial(rng, mu, dis.phi).sum(axis=0))
    return np.stack(out)


def test_annual_incidence_matches_configured_rate(city, diseases) -> None:
    pop = city.population.sum()
    for dis in diseases:
        if dis.rate < 2:
            continue
        daily = _baseline_year(city, dis, seeds=40)
        annual = daily.sum(axis=1) / pop * 1e5  # per 100,000 per seed
        se = annual.std(ddof=1) / np.sqrt(annual.size)
        # the trend is centred on the middle of the reference year, so no correction needed
        assert abs(annual.mean() - dis.rate) < max(4 * se, 0.01 * dis.rate), dis.key


def test_seasonal_peak_in_configured_months(city, diseases) -> None:
    days = np.datetime64(REF) + np.arange(365)
    month = days.astype("datetime64[M]").astype(int) % 12 + 1
    for dis in diseases:
        if not dis.peak_months:
            continue
        daily = _baseline_year(city, dis, seeds=10).sum(axis=0)
        monthly = np.bincount(month, weights=daily, minlength=13)[1:]
        per_day = monthly / np.bincount(month, minlength=13)[1:]
        assert int(np.argmax(per_day)) + 1 in dis.peak_months, dis.key


def test_dispersion_as_configured(city, diseases) -> None:
    for dis in diseases:
        if dis.phi < 1.4:
            continue
        daily = _baseline_year(city, dis, seeds=120)  # (seeds, days), same mean per day
        mean = daily.mean(axis=0)
        var = daily.var(axis=0, ddof=1)
        ratio = var.sum() / mean.sum()
        # variance also holds the spread of the per-seed township effects: allow +25 %
        assert dis.phi * 0.93 < ratio < dis.phi * 1.25, (dis.key, ratio)


# --- persons -------------------------------------------------------------------------


def test_id_numbers_have_correct_checksums_and_encode_birth_and_sex() -> None:
    rng = np.random.default_rng(0)
    sex = np.array(["1", "2", "1", "2"])
    births = [date(1990, 1, 31), date(2019, 12, 1), date(1950, 6, 6), date(2008, 2, 29)]
    ids = people.id_numbers(rng, ["640502", "640521", "640522", "640502"], births, sex)
    for number, born, s in zip(ids, births, sex, strict=True):
        assert people.id_is_valid(number)
        assert number[6:14] == f"{born:%Y%m%d}"
        assert int(number[16]) % 2 == (1 if s == "1" else 0)
    assert people.id_check_char("11010519491231002") == "X"  # the GB 11643 example


def test_occupation_consistent_with_age() -> None:
    rng = np.random.default_rng(1)
    ages = rng.integers(0, 90, 5000)
    occ = people.occupations(
        rng, ages, {"18": 1, "19": 1, "16": 1, "23": 1}, np.zeros(5000, bool), np.zeros(5000, bool)
    )
    assert set(occ[ages <= 14]) <= {"1", "2", "3"}
    assert "19" not in set(occ)  # no herders outside herding townships
    assert set(occ[ages < 3]) == {"2"}


# --- outbreaks and ground truth ------------------------------------------------------


def test_every_injected_case_is_in_the_output_and_the_truth(run) -> None:
    numbers = {c["card_number"] for c in run.cards}
    assert len(numbers) == len(run.cards)
    kinds = {o.kind for o in run.outbreaks}
    assert "kindergarten" in kinds  # the recent one is always there
    cases = run.cases
    for o in run.outbreaks:
        members = np.flatnonzero(cases["outbreak"] == o.id)
        assert members.size == o.extra_cases
        assert len(o.card_numbers) + o.unreported_cases == o.extra_cases
        assert set(o.card_numbers) <= numbers
        by_number = {c["card_number"]: c for c in run.cards}
        for n in o.card_numbers:
            card = by_number[n]
            assert card["disease_code"] in {o.disease_code} | set(
                next(d for d in run.diseases if d.key == o.disease_key).codes()
            )
            assert o.start <= card["onset_date"] <= o.end or any(
                e.card_number == n and e.kind == "impossible_date" for e in run.errors
            )
        if o.place_kind == "kindergarten":
            assert all(by_number[n]["work_unit"] == o.place_name for n in o.card_numbers)
    # reported cases have exactly one card; unreported none
    reported = cases["reported"]
    assert np.all(cases["card"][reported] >= 0) and np.all(cases["card"][~reported] == -1)


def test_recent_outbreak_is_under_way_on_the_last_day(run) -> None:
    recent = [o for o in run.outbreaks if (run.end - o.start).days <= 20]
    assert recent and recent[-1].extra_cases >= 5


def test_errors_share_and_kinds(run) -> None:
    n_orig = len(run.cards) - sum(1 for e in run.errors if e.kind == "duplicate")
    assert abs(len(run.errors) / n_orig - 0.02) < 0.006
    by_number = {c["card_number"]: c for c in run.cards}
    for e in run.errors:
        c = by_number[e.card_number]
        if e.kind == "bad_id_checksum":
            assert not people.id_is_valid(c["id_number"])
        elif e.kind == "duplicate":
            orig = by_number[e.duplicate_of]
            assert (c["id_number"], c["disease_code"]) == (orig["id_number"], orig["disease_code"])
        elif e.kind == "wrong_address_code":
            assert c["address_code"] not in run.city.codes


def test_reporting_delays_weekends_and_statuses(run) -> None:
    diag = [c["diagnosis_time"] for c in run.cards]
    weekend = sum(d.weekday() >= 5 for d in diag) / len(diag)
    assert weekend < 2 / 7 * 0.8  # fewer diagnoses on weekends
    assert all(
        c["onset_date"] <= c["diagnosis_time"].date()
        for c in run.cards
        if c["card_number"] not in {e.card_number for e in run.errors}
    )
    statuses = {c["status"] for c in run.cards}
    assert statuses == {"reviewed", "submitted"}
    late = [c for c in run.cards if c["status"] == "submitted"]
    assert all(
        c["entered_at"].date() >= date(2023, 6, 26) for c in late if c["reviewed_at"] is None
    )


# --- output --------------------------------------------------------------------------


def test_same_seed_same_bytes(city, diseases, facts, tmp_path: Path) -> None:
    def once(seed: int, d: Path) -> dict[str, bytes]:
        r = simulate_city(city, diseases, facts, date(2024, 1, 1), date(2024, 3, 31), seed=seed)
        write_files(r, d, ("csv", "jsonl", "xlsx"))
        return {p.name: p.read_bytes() for p in sorted(d.iterdir())}

    a, b = once(5, tmp_path / "a"), once(5, tmp_path / "b")
    assert a == b
    c = once(6, tmp_path / "c")
    assert c["cards.csv"] != a["cards.csv"]


def test_generated_cards_pass_the_validator_except_the_erroneous_ones(session, run) -> None:
    validation = pytest.importorskip("yifang.cases.validation")
    import polars as pl

    from yifang.simulate.output import CARD_COLUMNS, _text

    ref = validation.Reference.from_session(session)
    rows = {k: [_text(c.get(k)) for c in run.cards] for k in CARD_COLUMNS}
    frame = pl.DataFrame(rows, schema={k: pl.String for k in CARD_COLUMNS})
    outcome = validation.validate_frame(frame, ref, datetime(2023, 7, 1, 12))
    bad_numbers = {run.cards[i]["card_number"] for i, _ in outcome.invalid}
    meant = {e.card_number for e in run.errors if e.kind != "duplicate"}
    unexpected = bad_numbers - meant
    assert not unexpected, [
        (i, errs) for i, errs in outcome.invalid if run.cards[i]["card_number"] in unexpected
    ][:3]
    # most deliberate errors are caught (a missing optional phone may pass for adults)
    assert len(bad_numbers & meant) >= 0.8 * len(meant)


def test_build_city_writes_cards_and_truth(session) -> None:
    from yifang.cases.models import Card
    from yifang.simulate.service import build_city

    report = build_city(session, years=0.1, seed=9, end_date=date(2024, 3, 31))
    session.commit()
    assert session.scalar(select(func.count()).select_from(Card)) == report.cards
    n_ob = session.scalar(select(func.count()).select_from(sim_models.SimOutbreak))
    assert n_ob == report.outbreaks >= 1
    members = session.scalar(select(func.count()).select_from(sim_models.SimOutbreakCard))
    cards_in_db = set(session.scalars(select(Card.card_number)))
    assert (
        members
        and set(session.scalars(select(sim_models.SimOutbreakCard.card_number))) <= cards_in_db
    )
    again = build_city(session, years=0.1, seed=9, end_date=date(2024, 3, 31))
    session.commit()
    assert again.digest == report.digest
    assert session.scalar(select(func.count()).select_from(Card)) == report.cards
