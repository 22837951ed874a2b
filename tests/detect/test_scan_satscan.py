"""stp_scan against SaTScan's own results on public sample data (see fixtures/scan/README.md).

res1 = ours, res2 = SaTScan's printed results file. Everything deterministic must agree to the
digits SaTScan prints; Monte Carlo p-values within a binomial tolerance.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from yifang.detect.algorithms.scan import ScanResult, stp_scan

FIXTURES = Path(__file__).parent / "fixtures" / "scan"


@dataclass
class SatscanCluster:
    locations: list[str]
    radius: str
    start: dt.date
    end: dt.date
    observed: int
    expected: str
    llr: float
    p_value: float
    recurrence_days: int | None


def _date(text: str) -> dt.date:
    y, m, d = (int(x) for x in text.split("/"))
    return dt.date(y, m, d)


def read_satscan_results(name: str) -> list[SatscanCluster]:
    """The 'CLUSTERS DETECTED' section of a SaTScan results file."""
    text = (FIXTURES / name).read_text()
    section = text.split("CLUSTERS DETECTED")[1].split("_____")[0]
    blocks = re.split(r"\n(?=\d+\.Location IDs included)", "\n" + section.strip())
    out = []
    for block in filter(str.strip, blocks):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            m = re.match(r"\s*(?:\d+\.)?([A-Za-z /-]+?)\.+:\s*(.*)$", line)
            if m:
                key, value = m.group(1).strip(), m.group(2).strip()
                fields[key] = value
            elif key:
                fields[key] += " " + line.strip()
        start, end = fields["Time frame"].split(" to ")
        ri = fields.get("Recurrence interval")
        out.append(
            SatscanCluster(
                locations=[x.strip() for x in fields["Location IDs included"].split(",")],
                radius=fields["Coordinates / radius"].split("/ ")[-1].replace(" km", ""),
                start=_date(start),
                end=_date(end),
                observed=int(fields["Number of cases"]),
                expected=fields["Expected cases"],
                llr=float(fields["Test statistic"]),
                p_value=float(fields["P-value"]),
                recurrence_days=int(ri.split()[0]) if ri else None,
            )
        )
    return out


@dataclass
class SatscanData:
    observed: np.ndarray  # (days, locations)
    coordinates: np.ndarray  # (locations, 2) lon, lat
    ids: list[str]
    start: dt.date


def read_satscan_data(cas: str, geo: str, start: str, end: str) -> SatscanData:
    """Case file ``<id> <cases> <yyyy/mm/dd>`` and coordinates file ``<id> <lat> <lon>``."""
    rows = [line.split() for line in (FIXTURES / geo).read_text().splitlines() if line.strip()]
    ids = sorted(r[0] for r in rows)
    position = {z: i for i, z in enumerate(ids)}
    lonlat = {r[0]: (float(r[2]), float(r[1])) for r in rows}
    d0, d1 = _date(start), _date(end)
    observed = np.zeros(((d1 - d0).days + 1, len(ids)), dtype=np.int64)
    for line in (FIXTURES / cas).read_text().splitlines():
        if line.strip():
            z, n, day = line.split()
            observed[(_date(day) - d0).days, position[z]] += int(n)
    coordinates = np.array([lonlat[z] for z in ids])
    return SatscanData(observed, coordinates, ids, d0)


def _decimals(printed: str) -> int:
    return len(printed.split(".")[1]) if "." in printed else 0


def assert_same_cluster(res1, res2: SatscanCluster, data: SatscanData) -> None:
    assert [data.ids[i] for i in res1.locations] == res2.locations
    assert res1.radius == pytest.approx(float(res2.radius), abs=0.5 * 10 ** -_decimals(res2.radius))
    assert data.start + dt.timedelta(days=res1.start) == res2.start
    assert data.start + dt.timedelta(days=res1.end) == res2.end
    assert res1.observed == res2.observed
    half_unit = 0.5 * 10 ** -_decimals(res2.expected)
    assert res1.expected == pytest.approx(float(res2.expected), abs=half_unit)
    assert res1.llr == pytest.approx(res2.llr, abs=5e-7)


def assert_p_close(p1: float, p2: float, R1: int, R2: int) -> None:
    """Both p-values are Monte Carlo estimates: allow 4 combined binomial standard errors."""
    p = max(min((p1 + p2) / 2, 0.99), 0.01)
    sd = math.sqrt(p * (1 - p) / (R1 + 1) + p * (1 - p) / (R2 + 1))
    assert abs(p1 - p2) <= 4 * sd + 1e-3, (p1, p2)


@pytest.fixture(scope="module")
def nycfever() -> SatscanData:
    return read_satscan_data("NYCfever.cas", "NYCfever.geo", "2001/11/1", "2001/11/24")


@pytest.fixture(scope="module")
def nycresp() -> SatscanData:
    return read_satscan_data("NYCresp.cas", "NYCresp.geo", "2020/2/15", "2020/3/20")


def test_fixture_data_match_satscan_summary(nycfever, nycresp):
    assert nycfever.observed.shape == (24, 192) and nycfever.observed.sum() == 194
    assert nycresp.observed.shape == (35, 137) and nycresp.observed.sum() == 511
    # SaTScan combined 4 pairs of ZIP codes at identical coordinates: 133 locations
    assert np.unique(nycresp.coordinates, axis=0).shape[0] == 133


@pytest.fixture(scope="module")
def nycfever_prospective(nycfever) -> ScanResult:
    return stp_scan(
        nycfever.observed,
        nycfever.coordinates,
        coordinates_type="lonlat",
        analysis="prospective",
        max_share=0.5,
        max_days=12,  # 50% of the 24-day study period
        n_replicates=999,
        seed=20011124,
    )


def test_nycfever_prospective_clusters_match_satscan(nycfever, nycfever_prospective):
    res2 = read_satscan_results("NYCfever_prospective_satscan944.txt")
    res1 = nycfever_prospective.clusters
    assert len(res2) == 3
    assert len(res1) >= 3
    assert all(cl.p_value > 0.95 for cl in res1[3:])
    for ours, theirs in zip(res1, res2, strict=False):
        assert_same_cluster(ours, theirs, nycfever)


def test_nycfever_prospective_p_values_and_recurrence(nycfever_prospective):
    res2 = read_satscan_results("NYCfever_prospective_satscan944.txt")
    # SaTScan 9.4.4 stopped its sequential Monte Carlo after 141 replications
    for ours, theirs in zip(nycfever_prospective.clusters, res2, strict=False):
        assert_p_close(ours.p_value, theirs.p_value, 999, 141)
        assert ours.recurrence_interval == pytest.approx(max(1.0, 1.0 / ours.p_value))
    assert round(nycfever_prospective.clusters[0].recurrence_interval) in (2, 3, 4)


def test_nycfever_retrospective_clusters_match_satscan(nycfever):
    res2 = read_satscan_results("NYCfever_retrospective_satscan1002.txt")
    res1 = stp_scan(
        nycfever.observed,
        nycfever.coordinates,
        coordinates_type="lonlat",
        analysis="retrospective",
        max_days=12,
        n_replicates=0,  # without replicates up to 10 clusters are listed, as SaTScan does
    ).clusters
    assert len(res2) == 8
    for ours, theirs in zip(res1, res2, strict=False):
        assert_same_cluster(ours, theirs, nycfever)
        assert math.isnan(ours.p_value) and math.isnan(ours.recurrence_interval)


def test_nycfever_retrospective_primary_p_value(nycfever):
    res2 = read_satscan_results("NYCfever_retrospective_satscan1002.txt")[0]
    res1 = stp_scan(
        nycfever.observed,
        nycfever.coordinates,
        coordinates_type="lonlat",
        analysis="retrospective",
        max_days=12,
        n_replicates=199,
        seed=7,
    ).clusters[0]
    assert_p_close(res1.p_value, res2.p_value, 199, 999)


def test_nycresp_prospective_3km_clusters_match_satscan(nycresp):
    res2 = read_satscan_results("NYCresp_prospective_satscan1002.txt")
    result = stp_scan(
        nycresp.observed,
        nycresp.coordinates,
        coordinates_type="lonlat",
        max_share=0.5,
        max_radius=3.0,
        max_days=7,
        n_replicates=999,
        seed=2020,
    )
    assert len(res2) == 3
    # Which clusters with p near 1 are listed depends on the replicates' tail
    assert len(result.clusters) >= 3
    assert all(cl.p_value > 0.95 for cl in result.clusters[3:])
    for ours, theirs in zip(result.clusters, res2, strict=False):
        assert_same_cluster(ours, theirs, nycresp)
        assert_p_close(ours.p_value, theirs.p_value, 999, 999)
        assert theirs.recurrence_days is not None
