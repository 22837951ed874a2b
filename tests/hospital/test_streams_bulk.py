"""Stream observations in bulk: the simulator's extract, and a resend that corrects."""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import select

from yifang.hospital.models import StreamObservation
from yifang.hospital.service import put_observation_frame


def test_frame_with_the_simulators_columns_is_stored_and_a_resend_corrects(session):
    frame = pl.DataFrame(
        {
            "stream": ["ili", "ili", "school_absence", "ili"],
            "region_code": ["640521", "640521", "640521100", "640521"],
            "place_id": ["H1", "H1", "PS00001", "H2"],
            "date": [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 1), date(2025, 3, 1)],
            "value": [8, 9, 12, 5],
            "denominator": [200, 210, 480, None],
        }
    )
    assert put_observation_frame(session, frame) == 4
    session.commit()
    fix = pl.DataFrame(
        {
            "stream": ["ili", "ili"],
            "region_code": ["640521", "640521"],
            "place": ["H1", "H1"],
            "day": [date(2025, 3, 2), date(2025, 3, 3)],
            "value": [11.0, 7.0],
            "denominator": [220.0, 190.0],
            "source": ["sentinel", "sentinel"],
        }
    )
    assert put_observation_frame(session, fix) == 2
    session.commit()
    rows = {
        (o.place, o.day.day): (o.value, o.denominator, o.source)
        for o in session.scalars(select(StreamObservation).where(StreamObservation.stream == "ili"))
    }
    assert rows == {
        ("H1", 1): (8.0, 200.0, None),
        ("H1", 2): (11.0, 220.0, "sentinel"),  # corrected
        ("H1", 3): (7.0, 190.0, "sentinel"),
        ("H2", 1): (5.0, None, None),
    }
