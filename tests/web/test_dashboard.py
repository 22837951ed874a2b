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
