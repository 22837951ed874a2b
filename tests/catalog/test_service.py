"""The loader and the catalog's read and edit functions, on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from yifang.catalog import service
from yifang.catalog.models import Disease, Organisation, Population, Region
from yifang.catalog.schemas import DiseaseCreate, DiseaseUpdate
from yifang.core.audit import AuditEntry


def _count(session, table) -> int:
    return session.scalar(select(func.count()).select_from(table))


def test_the_template_database_holds_the_catalog(session):
    assert _count(session, Disease) == 87
    assert _count(session, Region) == 3400
    assert _count(session, Organisation) == 63
    assert _count(session, Population) > 12_000


def test_loading_again_changes_nothing(session):
    before = {t: _count(session, t) for t in (Disease, Region, Organisation, Population)}
    report = service.load_all(session)
    session.commit()
    assert report.changed == 0
    assert report.table("disease").unchanged == 87
    assert {t: _count(session, t) for t in before} == before


def test_loading_into_an_empty_catalog_inserts_everything(session):
    for table in (Population, Organisation):
        session.execute(table.__table__.delete())
    session.execute(Region.__table__.delete().where(Region.level == 4))
    session.commit()
    report = service.load_all(session)
    session.commit()
    assert report.table("region").inserted == 46
    assert report.table("organisation").inserted == 63
    assert report.table("population").inserted == _count(session, Population)


def test_an_administrators_edit_survives_a_reload(session):
    service.update_disease(
        session, "HFMD", DiseaseUpdate(duplicate_window_days=21, reason="local rule"), "dr.li"
    )
    session.commit()
    report = service.load_all(session)
    session.commit()
    hfmd = session.get(Disease, "HFMD")
    assert hfmd.duplicate_window_days == 21
    assert hfmd.edited_by == "dr.li"
    assert report.table("disease").kept == 1


def test_a_reload_restores_an_unedited_disease_changed_behind_its_back(session):
    session.get(Disease, "MUMPS").duplicate_window_days = 1
    session.commit()
    report = service.load_all(session)
    session.commit()
    assert session.get(Disease, "MUMPS").duplicate_window_days == 365
    assert report.table("disease").updated == 1


def test_refresh_restores_regions_and_keeps_new_organisations(session):
    session.get(Region, "640521").name = "改名县"
    session.add(Organisation(code="X1", name="新诊所", kind="clinic", region_code="640521100"))
    session.commit()
    assert service.load_all(session).changed == 0
    session.commit()
    assert session.get(Region, "640521").name == "改名县"
    service.load_all(session, refresh=True)
    session.commit()
    assert session.get(Region, "640521").name == "中宁县"
    assert session.get(Organisation, "X1") is not None


def test_updating_a_disease_is_validated_as_a_whole_and_audited(session):
    with pytest.raises(service.InvalidError, match="classifications"):
        service.update_disease(session, "FLU", DiseaseUpdate(classifications=["7"]), "admin")
    with pytest.raises(service.InvalidError, match="incubation"):
        service.update_disease(session, "FLU", DiseaseUpdate(incubation_min_days=9), "admin")
    with pytest.raises(service.InvalidError, match="cycle"):
        service.update_disease(session, "HEP", DiseaseUpdate(parent_code="HEP_B"), "admin")
    service.update_disease(session, "FLU", DiseaseUpdate(report_limit_hours=12), "admin")
    session.commit()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.entity_id == "FLU")).one()
    assert entry.action == "disease.update"
    assert entry.before == {"report_limit_hours": 24}
    assert entry.after == {"report_limit_hours": 12}


def test_creating_a_disease(session):
    data = DiseaseCreate(
        code="NORO_X", name_zh="诺如病毒感染", name_en="norovirus infection",
        disease_class="other", parent_code=None, duplicate_window_days=14,
    )  # fmt: skip
    disease = service.create_disease(session, data, "admin")
    session.commit()
    assert disease.edited_by == "admin"
    with pytest.raises(service.ConflictError):
        service.create_disease(session, data, "admin")
    orphan = data.model_copy(update={"code": "ORPHAN", "parent_code": "NOPE"})
    with pytest.raises(service.InvalidError, match="NOPE"):
        service.create_disease(session, orphan, "admin")


def test_listing_diseases(session):
    leaves = service.list_diseases(session, leaf_only=True)
    codes = [d.code for d in leaves]
    assert "HEP" not in codes and "HEP_B" in codes
    assert codes[:2] == ["CHOLERA", "PLAGUE"]
    class_c = service.list_diseases(session, disease_class="C")
    assert len(class_c) == 11
    out = service.disease_out(session, service.get_disease(session, "TB"))
    assert out.leaf is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [("640500", "6405"), ("640521100000", "640521100"), ("640000", "64"), ("640521", "640521"),
     ("640521000000", "640521")],
)  # fmt: skip
def test_padded_region_codes_are_normalised(given, expected):
    assert service.normalise_region_code(given) == expected


def test_region_queries(session):
    assert [r.code for r in service.region_children(session, "640500")] == [
        "640502", "640521", "640522",
    ]  # fmt: skip
    assert len(service.region_children(session)) == 34
    towns = service.region_descendants(session, "6405", level=4)
    assert len(towns) == 46
    assert service.county_of(session, "640522214").name == "海原县"
    assert service.county_of(session, "6405") is None
    assert service.region_path(session, "640521100") == "宁夏回族自治区中卫市中宁县宁安镇"
    with pytest.raises(service.NotFoundError):
        service.get_region(session, "999999")
    with pytest.raises(service.InvalidError):
        service.get_region(session, "64x")


def test_organisation_queries(session):
    in_haiyuan = service.list_organisations(session, region="640522")
    assert all(o.region_code.startswith("640522") for o in in_haiyuan)
    assert {o.kind for o in in_haiyuan} >= {"cdc", "hospital", "township_health_centre"}
    hospital = next(o for o in in_haiyuan if o.name == "海原县人民医院")
    assert service.reviewing_cdc(session, hospital.code).name == "海原县疾病预防控制中心"
    assert service.reviewing_cdc(session, "640500CD01") is None


def test_population_queries(session):
    pop = service.population(session, "640521", 2020)
    assert pop.total == 334_000
    assert sum(b.count for b in pop.bands) == pop.total
    bands = service.population_bands(session, "640500", 2024)
    assert len(bands) == 18 and bands[-1].age_to is None
    assert sum(b.count for b in bands) == service.population_total(session, "6405", 2024)
    males = service.population_bands(session, "640502100", 2023, sex="M")
    assert all(b.sex == "M" for b in males)
    assert service.population_total(session, "640521", 1999) is None


def test_resetting_a_disease_gives_it_back_to_the_data_file(session):
    service.update_disease(session, "MUMPS", DiseaseUpdate(report_limit_hours=6), "dr.li")
    session.commit()
    disease = service.reset_disease(session, "MUMPS", "dr.li")
    session.commit()
    assert (disease.report_limit_hours, disease.edited_by) == (24, None)
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_id == "MUMPS").order_by(AuditEntry.id)
    ).all()
    assert actions == ["disease.update", "disease.reset"]
    with pytest.raises(service.NotFoundError):
        service.reset_disease(session, "NOT_IN_FILE", "dr.li")
