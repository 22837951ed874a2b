"""The engine's batches on a Dask LocalCluster give what the local run gives."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from tests.detect.test_engine_batches import (
    AS_OF,
    CONFIG,
    COUNTIES,
    DISEASES,
    FIRST,
    N_DAYS,
    _cards,
    _county_counts,
    _reference,
    simulated_counts,
)
from yifang.cases.models import Card
from yifang.detect.distributed import DaskRunner, dask_runner, local_client
from yifang.detect.engine import BatchJob, CountArraySource, evaluate_batch, run_detection
from yifang.detect.models import DetectionRun, Signal

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # threads in this process: starts in about a second and needs no pickling of the tests
    with local_client(n_workers=2, processes=False) as c:
        yield c


def _snapshot(session: Session) -> list[tuple[Any, ...]]:
    return sorted(
        (
            s.rule,
            s.disease_code,
            s.region_code,
            s.first_date,
            s.last_date,
            s.alarm_periods,
            s.status,
            s.observed,
            s.upperbound,
            s.expected,
            s.cases_total,
            s.explanation_zh,
            repr(s.series),
        )
        for s in session.scalars(select(Signal))
    )


def test_run_on_dask_records_the_signals_of_a_local_run(session: Session, client: Any) -> None:
    _reference(session)
    session.execute(insert(Card), _cards(simulated_counts(), range(N_DAYS)))
    session.commit()
    local = run_detection(session, as_of=AS_OF, days=45, config=CONFIG, batch_size=2)
    expected = _snapshot(session)
    session.execute(delete(Signal))
    session.execute(delete(DetectionRun))
    session.commit()
    remote = run_detection(
        session,
        as_of=AS_OF,
        days=45,
        config=CONFIG,
        batch_size=2,
        runner=dask_runner(client, in_flight=3),
    )
    assert expected and _snapshot(session) == expected
    assert (remote.series, remote.alarms, remote.signals_new, remote.batches) == (
        local.series,
        local.alarms,
        local.signals_new,
        local.batches,
    )


def test_npy_batches_are_read_on_the_workers(client: Any, tmp_path: Path) -> None:
    """Batches of a file carry the path and their slice, not the counts."""
    path = tmp_path / "county.npy"
    np.save(path, _county_counts(simulated_counts()))
    source = CountArraySource.from_npy(path, diseases=DISEASES, regions=COUNTIES, first_day=FIRST)
    rule = CONFIG.rules[0]
    batches = source.batches(rule, DISEASES, as_of=AS_OF, history_days=500, batch_size=1)
    assert all(getattr(b, "data", None) is None for b in batches)
    jobs = [BatchJob(rule, b, 30, {}) for b in batches]
    here = list(map(evaluate_batch, jobs))
    # what a worker process receives
    assert [evaluate_batch(pickle.loads(pickle.dumps(j))) for j in jobs] == here
    there = list(DaskRunner(client, in_flight=2)(evaluate_batch, jobs))
    assert [r.alarms for r in there] == [r.alarms for r in here]
    assert sum(len(r.alarms) for r in here) > 0


def test_runner_needs_a_client_or_an_address() -> None:
    with pytest.raises(ValueError, match="client or a scheduler address"):
        dask_runner()
