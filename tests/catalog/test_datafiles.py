"""Integrity of the catalog's data files, checked without a database."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from yifang.catalog import datafiles
from yifang.catalog.codes import UnknownCodeListError, code_list, code_list_names, label
from yifang.catalog.datafiles import DataFileError, parse_diseases

# The township-level units of 中卫市 as listed in the research notes (§7.1, NBS 统计用区划代码
# 2022): code, name, county. 沙坡头区 13, 中宁县 12, 海原县 21.
ZHONGWEI_TOWNSHIPS = """
640502100 滨河镇 640502|640502101 文昌镇 640502|640502102 东园镇 640502|640502103 柔远镇 640502
640502104 镇罗镇 640502|640502105 宣和镇 640502|640502106 永康镇 640502|640502107 常乐镇 640502
640502108 迎水桥镇 640502|640502109 兴仁镇 640502|640502200 香山乡 640502
640502400 中卫山羊选育场 640502|640502401 中卫工业园区 640502
640521100 宁安镇 640521|640521101 鸣沙镇 640521|640521102 石空镇 640521|640521103 新堡镇 640521
640521104 恩和镇 640521|640521105 大战场镇 640521|640521200 舟塔乡 640521|640521201 白马乡 640521
640521202 余丁乡 640521|640521204 喊叫水乡 640521|640521205 徐套乡 640521|640521206 太阳梁乡 640521
640522100 海城镇 640522|640522101 李旺镇 640522|640522103 西安镇 640522|640522104 三河镇 640522
640522105 七营镇 640522|640522200 史店乡 640522|640522201 树台乡 640522|640522202 关桥乡 640522
640522206 高崖乡 640522|640522207 郑旗乡 640522|640522208 贾塘乡 640522|640522209 曹洼乡 640522
640522210 九彩乡 640522|640522211 李俊乡 640522|640522212 红羊乡 640522|640522213 关庄乡 640522
640522214 甘城乡 640522|640522400 种羊场 640522|640522401 南华山自然保护区管理处 640522
640522402 老城管理办公室 640522|640522406 海兴开发区 640522
"""
EXPECTED_TOWNSHIPS = {
    code: (name, county)
    for item in ZHONGWEI_TOWNSHIPS.replace("\n", "|").split("|")
    if item.strip()
    for code, name, county in [item.split()]
}
# 2020 census residents (万) of the research notes §7.2.
CENSUS_2020 = {"640502": 39.98, "640521": 33.40, "640522": 33.35, "6405": 106.73}


@pytest.fixture(scope="module")
def catalogue() -> datafiles.DiseaseCatalogue:
    return datafiles.read_diseases()


@pytest.fixture(scope="module")
def diseases(catalogue):
    return {d.code: d for d in catalogue.diseases}


@pytest.fixture(scope="module")
def regions():
    return {r["code"]: r for r in datafiles.read_regions()}


@pytest.fixture(scope="module")
def population():
    return datafiles.read_population()


@pytest.fixture(scope="module")
def organisations():
    return datafiles.read_organisations()


# --- diseases ------------------------------------------------------------------------------


def test_disease_file_is_versioned(catalogue):
    assert catalogue.version
    assert catalogue.effective_from == "2025-09-01"


def test_legal_diseases_are_2_class_a_27_class_b_11_class_c(diseases):
    legal = Counter(d.disease_class for d in diseases.values() if d.parent_code is None)
    assert (legal["A"], legal["B"], legal["C"]) == (2, 27, 11)


def test_codes_and_national_codes_are_unique(catalogue):
    codes = [d.code for d in catalogue.diseases]
    assert len(codes) == len(set(codes))
    national = [d.national_code for d in catalogue.diseases if d.national_code]
    assert len(national) == len(set(national))


def test_every_disease_has_a_two_or_twenty_four_hour_limit(diseases):
    assert {d.report_limit_hours for d in diseases.values()} <= {2, 24}
    two_hours = {c for c, d in diseases.items() if d.report_limit_hours == 2}
    assert two_hours == {"PLAGUE", "CHOLERA", "SARS", "ANTH_PUL", "PUE", "EBOLA", "MERS"}


def test_class_b_managed_as_class_a_is_sars_and_pulmonary_anthrax(diseases):
    managed = {c for c, d in diseases.items() if d.managed_as_class_a}
    assert managed == {"SARS", "ANTH_PUL"}
    assert all(diseases[c].report_limit_hours == 2 for c in managed)
    assert diseases["ANTHRAX"].managed_as_class_a is False
    assert diseases["ANTH_CUT"].report_limit_hours == 24


@pytest.mark.parametrize(
    ("parent", "children"),
    [
        ("HEP", {"HEP_A", "HEP_B", "HEP_C", "HEP_D", "HEP_E", "HEP_U"}),
        ("TB", {"TB_RR", "TB_POS", "TB_NEG", "TB_NOLAB"}),
        ("SYPHILIS", {"SYPH_1", "SYPH_2", "SYPH_3", "SYPH_CON", "SYPH_LAT"}),
        ("ANTHRAX", {"ANTH_PUL", "ANTH_CUT", "ANTH_U"}),
        ("DYSENTERY", {"DYS_BAC", "DYS_AMO"}),
        ("TYPH", {"TYPHOID", "PARATYPH"}),
        ("AIDS", {"AIDS_PT", "HIV"}),
    ],
)
def test_card_sub_diseases_are_children_that_inherit_the_class(diseases, parent, children):
    found = {c for c, d in diseases.items() if d.parent_code == parent}
    assert found == children
    assert all(diseases[c].disease_class == diseases[parent].disease_class for c in children)


def test_malaria_has_vivax_falciparum_and_unclassified(diseases):
    found = {c for c, d in diseases.items() if d.parent_code == "MALARIA"}
    assert {"MAL_VIV", "MAL_FAL", "MAL_U"} <= found


def test_key_surveillance_diseases_are_present(diseases):
    for code in ("VARICELLA", "SFTS", "AFP", "PUE", "EBOLA", "MERS", "ZIKA", "OTHER"):
        assert diseases[code].disease_class == "other"


def test_chronicity_is_asked_only_for_hepatitis_b_c_and_schistosomiasis(diseases):
    asked = {c for c, d in diseases.items() if d.chronicity}
    assert asked == {"HEP_B", "HEP_C", "SCHISTO"}
    assert {"1", "2"} <= set(diseases["HEP_B"].chronicity)


def test_classifications_and_windows_are_set_for_every_disease(diseases):
    for d in diseases.values():
        assert d.classifications, d.code
        assert d.duplicate_window_days >= 1, d.code
    assert diseases["CHOLERA"].classifications == ["1", "2", "3", "4"]
    assert "5" in diseases["HIV"].classifications
    assert diseases["FLU"].duplicate_window_days < diseases["HEP_B"].duplicate_window_days


def test_incubation_and_serial_interval_are_ordered(diseases):
    for d in diseases.values():
        values = [d.incubation_min_days, d.incubation_mean_days, d.incubation_max_days]
        present = [v for v in values if v is not None]
        assert present == sorted(present), d.code
    assert diseases["SARS"].serial_interval_mean_days == pytest.approx(8.4)
    assert diseases["MEASLES"].incubation_mean_days is not None


def test_children_inherit_rules_and_the_estimate_flags_of_inherited_values(diseases):
    assert diseases["ANTH_CUT"].incubation_mean_days == diseases["ANTHRAX"].incubation_mean_days
    assert diseases["HEP_B"].duplicate_window_days == diseases["HEP"].duplicate_window_days
    assert "incubation_mean" in diseases["HEP_D"].extra["estimated"]
    assert diseases["NNT"].extra["rules"]["max_age_days_at_report"] == 28


def _minimal(**entry):
    base = {"code": "X1", "name_zh": "测试", "name_en": "test", "class": "C"}
    return {"version": "t", "diseases": [{**base, **entry}]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_minimal(colour="red"), "unknown key 'colour'"),
        (_minimal(classifications=["9"]), "classifications"),
        (_minimal(incubation_days={"min": 5, "mean": 2}), "incubation"),
        (_minimal(parent="NOPE"), "parent NOPE must be defined before"),
        (_minimal(route="airborne"), "transmission_route"),
        (_minimal(managed_as_class_a=True), "only a class B disease"),
        ({"version": "t", "diseases": [_minimal()["diseases"][0]] * 2}, "defined twice"),
        ({"diseases": []}, "version"),
    ],
)
def test_a_broken_disease_file_names_the_entry_and_the_field(raw, message):
    with pytest.raises(DataFileError, match=message):
        parse_diseases(raw)


# --- code lists ----------------------------------------------------------------------------


def test_code_lists_have_labels_in_both_languages():
    for name in code_list_names():
        for code, entry in code_list(name).items():
            assert isinstance(code, str)
            assert entry.zh and entry.en
    assert label("sex", "2") == "女"
    assert label("residence_category", "6", "en") == "foreign national"
    assert list(code_list("age_unit")) == ["01", "02", "03"]
    assert len(code_list("population_group")) == 20
    assert code_list("population_group")["1"].attributes["max_age_years"] == 14


def test_an_unknown_code_list_names_the_known_ones():
    with pytest.raises(UnknownCodeListError, match="sex"):
        code_list("shoe_size")


@pytest.mark.parametrize(
    "name",
    ["sex", "id_type", "age_unit", "residence_category", "population_group",
     "case_classification", "chronicity", "report_type", "deletion_reason"],
)  # fmt: skip
def test_the_card_code_lists_exist(name):
    assert code_list(name)


# --- regions -------------------------------------------------------------------------------


def test_region_codes_are_unique_and_every_parent_chain_reaches_a_province(regions):
    for code, r in regions.items():
        chain = 0
        while r["parent_code"] is not None:
            assert code.startswith(r["parent_code"])
            r = regions[r["parent_code"]]
            chain += 1
        assert r["level"] == 1
        assert chain == regions[code]["level"] - 1


def test_the_whole_country_is_there_to_county_level(regions):
    levels = Counter(r["level"] for r in regions.values())
    assert levels[1] == 34  # 31 provinces + Taiwan, Hong Kong, Macao
    assert levels[2] > 300
    assert levels[3] > 2800
    assert regions["640521"]["name"] == "中宁县"


def test_the_zhongwei_townships_are_those_of_the_published_list(regions):
    found = {c: (r["name"], r["parent_code"]) for c, r in regions.items() if r["level"] == 4}
    assert found == EXPECTED_TOWNSHIPS


def test_township_kind_follows_the_code_and_attributes_are_filled(regions):
    for code in EXPECTED_TOWNSHIPS:
        r = regions[code]
        assert r["kind"] == {"1": "镇", "2": "乡", "4": "其他"}[code[6]]
        assert r["urban"] is not None and r["herding"] is not None
        assert 104.5 < r["longitude"] < 106.5 and 36.0 < r["latitude"] < 38.0
        assert "synthetic" in r["source_version"]


# --- population ----------------------------------------------------------------------------


def test_population_sums_match_at_every_level(population, regions):
    totals: dict[tuple[str, int], int] = {}
    bands: dict[tuple[str, int], int] = defaultdict(int)
    for p in population:
        if p["sex"] == "T":
            totals[(p["region_code"], p["year"])] = p["count"]
        else:
            bands[(p["region_code"], p["year"])] += p["count"]
    for (region, year), n in bands.items():
        assert totals[(region, year)] == n, (region, year)
    for year in range(2020, 2027):
        counties = [totals[(c, year)] for c in ("640502", "640521", "640522")]
        assert sum(counties) == totals[("6405", year)]
        for county in ("640502", "640521", "640522"):
            towns = [totals[(t, year)] for t, r in regions.items()
                     if r["parent_code"] == county]  # fmt: skip
            assert sum(towns) == totals[(county, year)]


def test_county_totals_are_the_2020_census(population):
    totals = {p["region_code"]: p["count"] for p in population
              if p["year"] == 2020 and p["sex"] == "T"}  # fmt: skip
    for code, wan in CENSUS_2020.items():
        assert totals[code] == round(wan * 10_000)
    assert totals["64"] == 7_202_654


def test_synthetic_populations_are_flagged(population):
    town = [p for p in population if len(p["region_code"]) == 9]
    assert town and all(p["synthetic"] for p in town)
    published = [p for p in population if p["region_code"] == "640502" and p["sex"] == "T"]
    assert [p["synthetic"] for p in sorted(published, key=lambda p: p["year"])][:2] == [False] * 2


# --- organisations -------------------------------------------------------------------------


def test_organisations_cover_every_township_and_county(organisations, regions):
    codes = {o["code"] for o in organisations}
    assert len(codes) == len(organisations)
    health_centres = {o["region_code"] for o in organisations
                      if o["kind"] == "township_health_centre"}  # fmt: skip
    towns = {c for c in EXPECTED_TOWNSHIPS if regions[c]["kind"] in ("镇", "乡")}
    assert health_centres == towns
    cdcs = {o["region_code"] for o in organisations if o["kind"] == "cdc"}
    assert cdcs == {"6405", "640502", "640521", "640522"}
    names = {o["name"] for o in organisations}
    for name in ("中卫市人民医院", "沙坡头区人民医院", "中宁县人民医院", "海原县人民医院",
                 "中卫市中医医院", "中卫市妇幼保健院"):  # fmt: skip
        assert name in names
    for o in organisations:
        assert o["region_code"] in regions
        assert o["parent_code"] is None or o["parent_code"] in codes
        assert o["synthetic"]
