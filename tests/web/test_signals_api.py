"""The signals API as the signal list page calls it: filters by series kind, the order of
best-confirmed first with its keyset cursor, and refused parameters."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from yifang.detect.models import Signal

DAY = date(2026, 11, 2)


def _signal(i: int, source: str, score: float, region: str = "640521100") -> Signal:
    return Signal(
        source=source,
        series_code="HFMD" if source == "cards" else "fever_resp",
        disease_code="HFMD" if source == "cards" else None,
        region_code=region,
        region_level="township",
        granularity="day",
        rule="test",
        method="ears_c1",
        status="open",
        first_date=DAY + timedelta(days=i),
        last_date=DAY + timedelta(days=i),
        observed=10.0,
        corroboration=int(score),
        rank_score=score,
    )


def _seed(session: Session) -> None:
    scores = [0.0, 2.0, 1.0, 0.0, 2.0, 1.0, 0.0]
    for i, score in enumerate(scores):
        session.add(_signal(i, "cards" if i % 2 else "syndrome", score))
    session.add(_signal(9, "cards", 5.0, region="640502100"))  # another county
    session.commit()


def _ids(page: dict[str, Any]) -> list[tuple[float, str]]:
    return [(s["rank_score"], s["last_date"]) for s in page["items"]]


def test_rank_order_pages_by_keyset_within_the_county(login: Any, session: Session) -> None:
    _seed(session)
    client = login("zn_cdc_review")
    seen: list[tuple[float, str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "rank", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/signals", params=params).json()
        seen += _ids(page)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7  # the other county's signal stays out
    assert seen == sorted(seen, key=lambda k: (-k[0], tuple(-ord(c) for c in k[1])))
    assert seen[0][0] == 2.0


def test_filters_by_source_and_corroboration(login: Any, session: Session) -> None:
    _seed(session)
    client = login("city_cdc")
    syndromes = client.get("/api/signals", params={"source": "syndrome"}).json()["items"]
    assert len(syndromes) == 4 and {s["source"] for s in syndromes} == {"syndrome"}
    confirmed = client.get("/api/signals", params={"min_corroboration": 2}).json()["items"]
    assert sorted(s["corroboration"] for s in confirmed) == [2, 2, 5]


def test_bad_parameters_are_refused_not_500(login: Any, session: Session) -> None:
    client = login("city_cdc")
    for params in (
        {"sort": "loudest"},
        {"source": "rumour"},
        {"cursor": "garbled"},
        {"sort": "rank", "cursor": "2026-11-02_5"},
        {"min_corroboration": -1},
    ):
        assert client.get("/api/signals", params=params).status_code == 422, params
