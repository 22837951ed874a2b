"""The dashboard's figures: this week against the same weeks of earlier years, the curve."""

from __future__ import annotations

from datetime import date, timedelta

from tests.web.seed import seed_cards
from yifang.web.dashboard_api import local_today, same_week_back


def test_same_week_back_keeps_the_weekday():
    end = date(2025, 3, 12)
    for years in range(1, 6):
        back = same_week_back(end, years)
        assert back.weekday() == end.weekday()
        assert abs((end.replace(year=end.year - years) - back).days) <= 3
    assert same_week_back(date(2024, 2, 29), 1).weekday() == date(2024, 2, 29).weekday()


def test_this_week_against_the_five_year_average(login, session):
    today = local_today()
    week = (today - timedelta(days=6), today)
    seed_cards(session, {"HFMD": 2.0}, *week, seed=1)  # 14 this week
    for years, rate in ((1, 1.0), (2, 0.0), (3, 1.0)):
        end = same_week_back(today, years)
        seed_cards(session, {"HFMD": rate}, end - timedelta(days=6), end, seed=10 + years)
    # the oldest card sets the years covered: three earlier years (1, 2, 3)
    board = login("city_cdc").get("/api/web/dashboard").json()
    assert board["baseline_years"] == 3
    row = next(r for r in board["by_disease"] if r["code"] == "HFMD")
    assert row["this_week"] == 14
    assert row["baseline"] == round((7 + 0 + 7) / 3, 2)
    assert row["ratio"] == round(14 / row["baseline"], 2)
    assert board["totals"]["this_week"] == 14
    assert sum(board["curve"]["total"]) >= 14


def test_queue_counts_follow_the_scope(login, session):
    today = local_today()
    seed_cards(session, {"HFMD": 3.0}, today - timedelta(days=3), today, status="submitted")
    city = login("city_cdc").get("/api/web/dashboard").json()["totals"]
    zn = login("zn_cdc_review").get("/api/web/dashboard").json()["totals"]
    assert city["awaiting_review"] == 12
    assert 0 < zn["awaiting_review"] < 12
    assert city["overdue"] > 0  # the seeded cards were due 24 h after diagnosis


def test_figures_are_shared_for_a_minute_and_say_when(login, session):
    today = local_today()
    seed_cards(session, {"HFMD": 2.0}, today - timedelta(days=2), today, seed=1)
    first = login("city_cdc").get("/api/web/dashboard").json()
    seed_cards(session, {"HFMD": 2.0}, today - timedelta(days=2), today, seed=2)
    again = login("commission").get("/api/web/dashboard").json()  # same jurisdiction
    assert again["totals"] == first["totals"] and again["as_of"] == first["as_of"]
    county = login("zn_cdc_review").get("/api/web/dashboard").json()  # computed afresh
    assert county["as_of"] >= first["as_of"]


def test_cache_recomputes_once_expired_and_serves_the_old_value_meanwhile():
    import threading

    from yifang.web.cache import TTLCache

    cache = TTLCache()
    calls = []
    assert cache.get("k", 60, lambda: calls.append(1) or 1)[0] == 1
    assert cache.get("k", 60, lambda: calls.append(2) or 2)[0] == 1  # fresh: kept
    assert cache.get("k", 0.000001, lambda: calls.append(3) or 3)[0] == 3  # expired: redone
    assert cache.get("x", 0, lambda: 9)[0] == 9  # ttl 0: no cache
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 4

    worker = threading.Thread(target=lambda: cache.get("k", 0.000001, slow))
    worker.start()
    started.wait(5)
    assert cache.get("k", 0.000001, lambda: 5)[0] == 3  # the refresh is under way: old value
    release.set()
    worker.join(5)
    assert cache.get("k", 60, lambda: 6)[0] == 4


def test_map_gives_incidence_per_100000_by_township_within_the_jurisdiction(login, session):
    from sqlalchemy import select

    from yifang.catalog.models import Population

    today = local_today()
    n = seed_cards(session, {"HFMD": 3.0}, today - timedelta(days=6), today, seed=4)
    city = login("city_cdc").get("/api/web/dashboard").json()["map"]
    towns = {t["code"]: t for t in city["townships"]}
    assert sum(t["cases"] for t in towns.values()) == n
    assert {c["code"] for c in city["counties"]} == {"640502", "640521", "640522"}
    town = towns["640521100"]
    population = session.scalar(
        select(Population.count).where(
            Population.region_code == "640521100",
            Population.year == city["population_year"],
            Population.sex == "T",
            Population.age_to.is_(None),
        )
    )
    assert town["population"] == population
    assert town["incidence"] == round(town["cases"] * 100_000 / population, 2)
    assert town["lon"] and town["lat"]
    county = login("zn_cdc_review").get("/api/web/dashboard").json()["map"]
    assert {c["code"] for c in county["counties"]} == {"640521"}
    assert all(t["code"].startswith("640521") for t in county["townships"])
    assert login("zn_hospital").get("/api/web/dashboard").json()["map"] is None


def test_open_response_work_within_the_jurisdiction(login, session):
    """Open signals, overdue and escalated verifications and active events, per viewer."""
    from datetime import datetime

    from yifang.detect.models import Signal
    from yifang.respond import service as respond

    day = date(2026, 11, 2)
    for town in ("640521100", "640521101", "640502100"):
        session.add(
            Signal(
                disease_code="HFMD",
                region_code=town,
                region_level="township",
                granularity="day",
                rule="test",
                method="ears_c1",
                status="open",
                first_date=day,
                last_date=day,
                observed=9.0,
                created_at=datetime(2026, 11, 2, 8),
            )
        )
    session.commit()
    respond.open_verifications(session, now=datetime(2026, 11, 2, 9))
    session.commit()
    late = datetime(2026, 11, 10)
    respond.escalate_overdue(session, now=late)
    session.commit()

    city = login("city_cdc").get("/api/web/dashboard").json()["response"]
    zn = login("zn_cdc_review").get("/api/web/dashboard").json()["response"]
    assert city["open_signals"] == 3 and zn["open_signals"] == 2
    assert city["verifications_pending"] == 3 and zn["verifications_pending"] == 2
    assert city["verifications_overdue"] == 3  # due within a day of the signal
    assert zn["verifications_escalated"] == 2
    assert city["events_open"] == 0 and set(city["events"]) >= {"suspected", "responding"}
