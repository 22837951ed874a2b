"""Every page renders for the roles that may see it, in Chinese and in English, and names
every message it uses in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yifang.web.i18n import messages

PAGES = {
    "zn_hospital": ["/", "/cards/new", "/cards/mine", "/cards", "/account"],
    "zn_prevention": ["/cards/import", "/account"],
    "zn_cdc_review": ["/", "/review", "/cards", "/cards/1", "/signals", "/signals/1", "/account"],
    "city_cdc": ["/", "/review", "/cards"],
    "edu_liaison": ["/", "/account"],
    "admin": ["/", "/account", "/admin/users"],
}


@pytest.mark.parametrize("username", sorted(PAGES))
def test_pages_render_for_their_roles(login, username):
    client = login(username)
    for path in PAGES[username]:
        for lang in ("zh", "en"):
            r = client.get(f"{path}?lang={lang}")
            assert r.status_code == 200, (path, r.text[:300])
            assert "<!doctype html>" in r.text
            assert "{{" not in r.text


def test_card_form_offers_catalog_code_lists(login):
    html = login("zn_hospital").get("/cards/new").text
    assert "中宁县人民医院" in html  # the reporter's organisation, fixed
    assert 'name="disease_code"' in html and "霍乱" in html
    assert 'name="occupation"' in html and "散居儿童" in html
    assert "宁安镇" in html or "optgroup" in html  # townships by county


def test_every_message_key_used_exists_in_both_languages():
    web = Path(__file__).parents[2] / "yifang" / "web"
    catalog = messages()
    used: set[str] = set()
    for template in (web / "templates").glob("*.html"):
        used |= set(re.findall(r"t\('([a-z_.]+)'\)", template.read_text(encoding="utf-8")))
    for script in (web / "static" / "js").glob("*.js"):
        used |= {"js." + k for k in re.findall(r'YF\.t\("([a-z_.]+)"', script.read_text())}
    missing = sorted(k for k in used if k not in catalog and not k.endswith("."))
    assert not missing, missing
    for key, entry in catalog.items():
        assert entry.get("zh") and entry.get("en"), key


def test_static_assets_are_served_locally(client):
    r = client.get("/static/vendor/echarts.min.js")
    assert r.status_code == 200 and len(r.content) > 500_000
    assert client.get("/static/css/app.css").status_code == 200
    page = client.get("/login").text
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_import_page_uploads_through_the_cases_api(login):
    client = login("zn_prevention")
    assert "导入报告卡" in client.get("/cards/import").text
    header = "患者姓名,性别\n"
    r = client.post(
        "/api/imports",
        files={"file": ("cards.csv", (header + "张三,男\n").encode("utf-8"), "text/csv")},
    )
    assert r.status_code in (201, 422), r.text
    anonymous_csrf = client.post(
        "/api/imports",
        files={"file": ("cards.csv", header.encode("utf-8"), "text/csv")},
        headers={"X-CSRF-Token": "forged"},
    )
    assert anonymous_csrf.status_code == 403
