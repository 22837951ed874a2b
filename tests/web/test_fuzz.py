"""The whole OpenAPI schema fuzzed with schemathesis, as a user of each of two counties.

Every operation of ``/api/openapi.json`` is called with generated requests (valid ones and
invalid ones) by a 中宁县 user and by a 沙坡头区 user, each authenticating with an API token
(``Authorization: Bearer``). Both hold every permission a county role has, so the fuzzing
reaches every route a county may use. Besides the purely generated requests, each
operation is also called with its identifiers and filters pointed at the *other* county's
card, signal, verification and event (path ids, ``region``, ``org_code``, ``card_number``,
the ignored ``x-yifang-*`` headers), since random integers seldom hit a real row.

Two properties must hold for every response:

* no 5xx (an exception in a route is caught with its traceback);
* nothing of the other county's cards: no card number or patient name of theirs in the
  body, no JSON object carrying one of their card ids as ``card_id`` or as the ``id`` of an
  object with a ``card_number``.

Failures are collected over the whole run and reported together (request, status,
traceback), not shrunk: the run is bounded (``EXAMPLES`` per operation and user) so the
file stays under about two minutes.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from sqlalchemy import select

from tests.respond.conftest import make_signal
from tests.web.seed import (
    ORGS,
    SPS_HOSPITAL,
    SPS_TOWN,
    ZN_HOSPITAL,
    ZN_TOWN,
    card_values,
    seed_cards,
)
from yifang.cases import service as cases_service
from yifang.cases.models import Card
from yifang.core import accounts
from yifang.core.accounts import Role
from yifang.core.db import utcnow
from yifang.core.jurisdiction import Scope

pytestmark = pytest.mark.slow

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

#: Generated requests per operation and user (valid ones; half as many invalid ones).
EXAMPLES = 3
#: Requests per operation and user aimed at the other county's rows.
TARGETED = 3

COUNTIES = {"zn": "640521", "sps": "640502"}
NAMES = {"zn": "宁甲乙", "sps": "沙丙丁"}

#: Operations left out: they end the caller's own access, which is not what is probed here
#: (revoking one's token, changing one's password, logging out are tested in test_login).
SKIPPED = {
    ("DELETE", "/api/tokens/{token_id}"),
    ("POST", "/api/auth/password"),
    ("POST", "/api/auth/logout"),
}


@dataclass
class County:
    """One county's fuzzing account and the rows that are its own."""

    key: str
    token: str = ""
    card_ids: set[int] = field(default_factory=set)
    card_numbers: set[str] = field(default_factory=set)
    patient_names: set[str] = field(default_factory=set)
    targets: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failure:
    who: str
    operation: str
    request: str
    status: int | None
    problem: str

    @property
    def kind(self) -> tuple[str, str]:
        """The operation and the last line of the problem (an exception's type and text)."""
        return self.operation, self.problem.strip().splitlines()[-1][:160]

    def __str__(self) -> str:
        return f"[{self.who}] {self.request} → {self.status}: {self.problem}"


def county_role(session) -> Role:
    """A county-scoped role holding every permission of the county roles (and tokens)."""
    perms: set[str] = {"token.manage", "task.view"}
    for role in session.scalars(select(Role).where(Role.scope == "county")):
        perms |= set(role.permissions or [])
    role = Role(
        code="fuzz_county",
        name_zh="县区(全部权限)",
        name_en="County (all county rights)",
        scope="county",
        permissions=sorted(perms),
    )
    session.add(role)
    session.flush()
    return role


def build_world(session, demo) -> dict[str, County]:
    """Cards, signals, verifications and events in both counties, and a token per county."""
    from yifang.respond import service as respond

    today = utcnow().date()
    seed_cards(session, {"HFMD": 1.5, "FLU": 1.0}, today - timedelta(days=9), today, seed=5)
    seed_cards(
        session, {"VARICELLA": 1.0}, today - timedelta(days=4), today, seed=6, status="submitted"
    )
    role = county_role(session)
    counties: dict[str, County] = {}
    for key, prefix in COUNTIES.items():
        county = County(key)
        town, org = (ZN_TOWN, ZN_HOSPITAL) if key == "zn" else (SPS_TOWN, SPS_HOSPITAL)
        card = cases_service.create_card(
            session, card_values(NAMES[key], town, org), scope=Scope.everything("seed")
        )
        cdc = accounts.get_user(session, "zn_cdc_epi" if key == "zn" else "sps_cdc_review")
        user = accounts.create_user(
            session,
            username=f"fuzz_{key}",
            password="Fuzz-pass-2024!",
            role_code=role.code,
            display_name=f"fuzz {key}",
            organisation_code=cdc.organisation_code if cdc else None,
            region_code=prefix,
        )
        _token, county.token = accounts.create_token(session, user, "fuzz")
        signal = make_signal(session, "HFMD", town, created_at=utcnow())
        session.flush()
        respond.open_verifications(session, utcnow())
        system = respond.Viewer.system("seed")
        event = respond.open_event(
            session,
            viewer=system,
            title=f"{NAMES[key]}所在学校聚集",
            region_code=town,
            disease_code="HFMD",
            signal_id=signal.id,
        )
        respond.link_case(session, event.id, card.id, viewer=system)
        session.flush()
        verification = session.execute(
            select(respond.Verification.id).where(respond.Verification.signal_id == signal.id)
        ).scalar_one_or_none()
        rows = session.execute(
            select(Card.id, Card.card_number, Card.patient_name).where(
                Card.address_code.like(f"{prefix}%")
            )
        ).all()
        county.card_ids = {r[0] for r in rows}
        county.card_numbers = {r[1] for r in rows}
        county.patient_names = {NAMES[key]}
        county.targets = {
            "card_id": card.id,
            "case_card_id": card.id,
            "signal_id": signal.id,
            "verification_id": verification or 1,
            "event_id": event.id,
            "region": prefix,
            "township": town,
            "org_code": ORGS[prefix],
            "card_number": card.card_number,
            "x-yifang-region": prefix,
            "x-yifang-org": ORGS[prefix],
            "x-yifang-user": "city_cdc",
        }
        counties[key] = county
    session.commit()
    return counties


def card_leaks(payload: Any, other: County) -> str | None:
    """What of ``other``'s cards a decoded JSON ``payload`` shows, if anything."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("card_id") in other.card_ids:
                return f"card_id {item['card_id']}"
            if "card_number" in item and item.get("id") in other.card_ids:
                return f"card id {item['id']}"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def text_leaks(text: str, other: County) -> str | None:
    for secret in (*other.card_numbers, *other.patient_names):
        if secret in text:
            return f"'{secret}' in the body"
    return None


def targeted(operation: Any, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The operation's parameters that name one of ``values``, by location."""
    fixed: dict[str, dict[str, Any]] = {"path_parameters": {}, "query": {}, "headers": {}}
    for name, location, _type in _parameters(operation):
        if name in values and location in WHERE:
            fixed[WHERE[location]][name] = values[name]
    return {k: v for k, v in fixed.items() if v}


def out_of_range(operation: Any, value: int) -> dict[str, dict[str, Any]]:
    """Every integer path and query parameter of the operation set to ``value``."""
    fixed: dict[str, dict[str, Any]] = {"path_parameters": {}, "query": {}}
    for name, location, kind in _parameters(operation):
        if kind == "integer" and location in ("path", "query"):
            fixed[WHERE[location]][name] = value
    return {k: v for k, v in fixed.items() if v}


WHERE = {"path": "path_parameters", "query": "query", "header": "headers"}


def _parameters(operation: Any) -> list[tuple[str, str, str | None]]:
    """(name, location, JSON type) of each parameter the operation declares."""
    out = []
    for p in operation.definition.raw.get("parameters", []):
        schema = p.get("schema", {})
        kinds = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
        kind = "integer" if "integer" in kinds else next((k for k in kinds if k), None)
        out.append((p["name"].lower(), p["in"], kind))
    return out


def describe(case: Any) -> str:
    body = getattr(case, "body", None)
    if type(body).__name__ == "NotSet":
        body = None
    try:
        shown = json.dumps(body, ensure_ascii=False, default=str)[:300]
    except TypeError:
        shown = repr(body)[:300]
    return (
        f"{case.method} {case.formatted_path} query={case.query} "
        f"headers={ {k: v for k, v in (case.headers or {}).items()} } body={shown}"
    )


@dataclass
class Run:
    """What one fuzzing run found and did."""

    failures: list[Failure] = field(default_factory=list)
    requests: int = 0
    operations: int = 0
    notes: list[str] = field(default_factory=list)


def fuzz_operation(operation: Any, me: County, other: County, run: Run) -> None:
    """Call ``operation`` as ``me``: generated requests (valid and invalid), requests aimed
    at ``other``'s rows, and integers past the 64-bit and 32-bit limits."""
    auth = {"Authorization": f"Bearer {me.token}"}

    def call(case: Any) -> None:
        run.requests += 1

        def fail(status: int | None, problem: str) -> None:
            run.failures.append(Failure(me.key, operation.label, describe(case), status, problem))

        try:
            response = case.call(headers=auth)
        except Exception:
            fail(None, "exception\n" + traceback.format_exc())
            return
        status = response.status_code
        text = response.content.decode("utf-8", "replace")
        if status >= 500:
            fail(status, text[:500])
            return
        problem = text_leaks(text, other)
        if problem is None and "json" in response.headers.get("content-type", ""):
            try:
                problem = card_leaks(response.json(), other)
            except ValueError:
                problem = None
        if problem is not None:
            fail(status, "leak: " + problem)

    plans: list[tuple[Any, int]] = [
        (operation.as_strategy(generation_mode=GenerationMode.POSITIVE), EXAMPLES)
    ]
    if _parameters(operation) or operation.body:
        negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        plans.append((negative, max(1, EXAMPLES // 2)))
    aimed = targeted(operation, other.targets)
    if aimed:
        plans.append((operation.as_strategy(**aimed), TARGETED))
    for limit in (2**63, 2**31):
        fixed = out_of_range(operation, limit)
        if fixed:
            plans.append((operation.as_strategy(**fixed), 1))
    for strategy, examples in plans:
        runner = settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(call))
        try:
            runner()
        except Unsatisfiable:  # no invalid value exists for a free-text path parameter
            continue
        except Exception as exc:
            run.notes.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:300])


def test_no_server_error_and_no_other_countys_card(engine, session, demo):
    from yifang.web.app import create_app

    counties = build_world(session, demo)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app())
    run = Run()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        run.operations += 1
        for me, other in (("zn", "sps"), ("sps", "zn")):
            fuzz_operation(operation, counties[me], counties[other], run)
    print(f"fuzzed {run.operations} operations with {run.requests} requests")
    assert not run.notes, "\n".join(run.notes)
    assert run.operations > 50 and run.requests > 500
    assert not run.failures, report(run.failures)


def report(failures: list[Failure]) -> str:
    """Each kind of failure once (its first request and traceback), then how often."""
    first: dict[tuple[str, str], Failure] = {}
    seen: dict[tuple[str, str], int] = {}
    for f in failures:
        first.setdefault(f.kind, f)
        seen[f.kind] = seen.get(f.kind, 0) + 1
    parts = [f"{len(failures)} failures of {len(first)} kinds"]
    parts += [f"{seen[k]}× {f}" for k, f in first.items()]
    return "\n\n".join(parts)
