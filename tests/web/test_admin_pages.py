"""The catalog's administration pages: disease settings and organisations.

Only roles holding ``admin.catalog`` (the system administrator) open them or see them in
the navigation; the pages are shells whose scripts call ``/api/diseases`` and
``/api/organisations`` with the CSRF header, so the writes are exercised here the way the
scripts make them (session cookie + ``X-CSRF-Token``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yifang.catalog.models import Disease, Organisation
from yifang.catalog.service import load_all
from yifang.core.accounts import has_permission, load_roles
from yifang.core.audit import AuditEntry
from yifang.web.i18n import messages

PAGES = ("/admin/diseases", "/admin/organisations")
WEB = Path(__file__).parents[2] / "yifang" / "web"


@pytest.mark.parametrize("path", PAGES)
def test_the_administrator_opens_the_page_in_both_languages(login, path):
    client = login("admin")
    for lang, words in (("zh", ("病种设置", "机构管理")), ("en", ("Diseases", "Organisations"))):
        r = client.get(f"{path}?lang={lang}")
        assert r.status_code == 200, r.text[:300]
        main = r.text.split('<main class="page"', 1)[1].split("</main>", 1)[0]
        assert "{{" not in main and "catalog." not in main  # every message key translated
        nav = r.text.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]
        assert all(w in nav for w in words)  # both pages are in the navigation
        assert 'class="active" aria-current="page"' in nav
    html = client.get(path).text
    assert "js/admin_catalog.js" in html and "https://" not in html


def test_the_disease_page_offers_the_code_lists(login):
    html = login("admin").get("/admin/diseases").text
    assert "临床诊断病例" in html and "病原携带者" in html  # classifications
    assert "慢性" in html and "呼吸道传染病" in html  # chronicity, transmission route
    assert 'name="report_limit_hours"' in html and 'data-error-for="report_limit_hours"' in html


def test_the_organisation_page_offers_kinds_and_the_citys_regions(login):
    html = login("admin").get("/admin/organisations").text
    assert "乡镇卫生院" in html and "疾病预防控制中心" in html
    assert '<optgroup label="中宁县">' in html and 'value="640521100"' in html  # 宁安镇
    assert html.count("<optgroup") == html.count("</optgroup>") == 3


@pytest.mark.parametrize("username", ["zn_cdc_review", "city_cdc", "zn_hospital"])
def test_other_roles_are_refused_and_not_shown_the_links(login, username):
    client = login(username)
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 403
        assert "admin.catalog" in r.text
    home = client.get("/").text
    assert "/admin/diseases" not in home and "/admin/organisations" not in home


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for path in PAGES:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=")


def test_only_the_system_administrator_holds_admin_catalog(session):
    from yifang.core.accounts import Role

    load_roles(session)
    session.commit()
    holders = {r.code for r in session.query(Role) if "admin.catalog" in (r.permissions or [])}
    assert holders == {"system_admin"}


def test_the_pages_writes_need_the_csrf_header(login):
    client = login("admin")
    token = client.headers.pop("X-CSRF-Token")
    r = client.patch("/api/diseases/HFMD", json={"report_limit_hours": 12})
    assert r.status_code == 403
    client.headers["X-CSRF-Token"] = token
    assert client.patch("/api/diseases/HFMD", json={"report_limit_hours": 12}).status_code == 200


def test_editing_through_the_session_is_audited_and_survives_reload(login, session):
    client = login("admin")
    r = client.patch("/api/diseases/HFMD", json={"report_limit_hours": 12, "reason": "city pilot"})
    assert r.status_code == 200, r.text
    org = {
        "code": "640502100CL09",
        "name": "滨河镇仁和诊所",
        "kind": "clinic",
        "region_code": "640502100",
        "parent_code": "640502CD01",
    }
    assert client.post("/api/organisations", json=org).status_code == 201
    session.expire_all()
    actors = {
        (e.action, e.actor)
        for e in session.query(AuditEntry).filter(
            AuditEntry.action.in_(("disease.update", "organisation.create"))
        )
    }
    assert actors == {("disease.update", "admin"), ("organisation.create", "admin")}
    load_all(session, refresh=True)
    session.commit()
    session.expire_all()
    assert session.get(Disease, "HFMD").report_limit_hours == 12
    assert session.get(Organisation, "640502100CL09").edited_by == "admin"


def test_a_refusal_reaches_the_page_by_field_in_the_users_language(login):
    client = login("admin")
    r = client.patch("/api/diseases/HFMD", json={"report_limit_hours": 0})
    assert r.status_code == 422
    [field] = r.json()["fields"]
    assert field["field"] == "report_limit_hours"
    assert field["message_zh"] == "报告时限（小时）：不能小于 1"
    # the page shows each message under the input named by the field
    html = client.get("/admin/diseases").text
    assert f'data-error-for="{field["field"]}"' in html


def test_every_message_of_the_admin_scripts_exists_in_both_languages():
    catalog = messages()
    used: set[str] = set()
    for script in (WEB / "static" / "js").glob("admin_*.js"):
        text = script.read_text(encoding="utf-8")
        used |= {"js." + k for k in re.findall(r'YF\.t\("([a-z_.]+)"', text)}
        used |= {"js." + k for k in re.findall(r'"(catalog\.[a-z_.]+)"', text)}
    fields = ["name", "kind", "region_code", "report_limit_hours", "classifications", "subtypes"]
    used |= {f"js.catalog.field.{f}" for f in fields}
    used |= {f"js.catalog.action.{a}" for a in ("create", "update", "reset")}
    used |= {f"js.catalog.class.{c}" for c in ("A", "B", "C", "other")}
    missing = sorted(k for k in used if not k.endswith((".", "_")) and k not in catalog)
    assert not missing, missing


def test_the_system_administrator_may_change_the_catalog(session):
    from yifang.core import accounts

    load_roles(session)
    user = accounts.create_user(
        session, username="root", password="x", role_code="system_admin", check_policy=False
    )
    assert has_permission(user, "admin.catalog")
