"""Accounts: hashing, the password policy, lockout, API tokens, roles as data, demo users."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from yifang.core import accounts
from yifang.core.accounts import (
    ApiToken,
    LoginAttempt,
    LoginError,
    PasswordPolicyError,
    Role,
    authenticate,
    create_token,
    create_user,
    hash_password,
    load_roles,
    password_problems,
    revoke_token,
    user_for_token,
    verify_password,
)
from yifang.core.audit import AuditEntry
from yifang.core.db import utcnow

GOOD = "Tablet-Grass-42"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Argon2 at its cheapest parameters: the tests check behaviour, not hashing cost."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture()
def roles(session):
    load_roles(session)
    session.commit()
    return session


def make_user(session, username="alice", role="county_cdc_reviewer", **kw):
    user = create_user(
        session, username=username, password=GOOD, role_code=role, region_code="640521", **kw
    )
    session.commit()
    return user


def test_hash_is_argon2id_salted_and_verifies():
    h1, h2 = hash_password(GOOD), hash_password(GOOD)
    assert h1.startswith("$argon2id$")
    assert h1 != h2
    assert verify_password(h1, GOOD)
    assert not verify_password(h1, GOOD + "x")
    assert not verify_password("not a hash", GOOD)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Ab1!", "too_short:8"),
        ("alllowercase", "too_few_classes:3"),
        ("Password123", "too_common"),
        ("xAlice-2024x", "contains_username"),
        (" Tablet-Grass-42", "surrounding_spaces"),
    ],
)
def test_policy_names_each_problem(password, problem):
    assert problem in password_problems(password, "alice")


def test_policy_accepts_good_password_and_generated_ones():
    assert password_problems(GOOD, "alice") == []
    for _ in range(20):
        assert password_problems(accounts.generate_password()) == []


def test_create_user_refuses_weak_password_and_duplicates(roles):
    with pytest.raises(PasswordPolicyError) as err:
        create_user(roles, username="bob", password="short", role_code="city_cdc")
    assert "too_short:8" in err.value.problems
    make_user(roles, "bob")
    with pytest.raises(ValueError, match="taken"):
        create_user(roles, username="BOB", password=GOOD, role_code="city_cdc")
    with pytest.raises(ValueError, match="role_code"):
        create_user(roles, username="carol", password=GOOD, role_code="no_such_role")


def test_login_success_is_recorded_and_audited(roles):
    make_user(roles)
    user = authenticate(roles, "Alice", GOOD, ip="10.0.0.1")
    roles.commit()
    assert user.username == "alice" and user.last_login_at is not None
    attempt = roles.scalars(select(LoginAttempt)).one()
    assert attempt.success and attempt.ip == "10.0.0.1"
    actions = roles.scalars(select(AuditEntry.action)).all()
    assert "login" in actions and "user.create" in actions


def test_unknown_user_and_wrong_password_look_the_same(roles):
    make_user(roles)
    with pytest.raises(LoginError) as a:
        authenticate(roles, "nobody", GOOD)
    with pytest.raises(LoginError) as b:
        authenticate(roles, "alice", "Wrong-pass-1")
    assert a.value.reason == b.value.reason == "invalid"
    reasons = roles.scalars(select(LoginAttempt.reason).order_by(LoginAttempt.id)).all()
    assert reasons == ["unknown_user", "bad_password"]


def test_lockout_after_repeated_failures_then_unlock_after_the_lock(roles):
    make_user(roles)
    limit = accounts.get_account_settings().lockout_failures
    now = utcnow()
    for i in range(limit):
        with pytest.raises(LoginError):
            authenticate(roles, "alice", f"Wrong-pass-{i}", now=now)
    roles.commit()
    # locked: even the right password is refused, with the time it ends
    with pytest.raises(LoginError) as err:
        authenticate(roles, "alice", GOOD, now=now + timedelta(minutes=1))
    assert err.value.reason == "locked" and err.value.locked_until is not None
    later = err.value.locked_until + timedelta(seconds=1)
    assert authenticate(roles, "alice", GOOD, now=later).username == "alice"
    assert "user.locked" in roles.scalars(select(AuditEntry.action)).all()


def test_failures_outside_the_window_do_not_lock(roles):
    make_user(roles)
    settings = accounts.get_account_settings()
    start = utcnow()
    for _ in range(settings.lockout_failures - 1):
        with pytest.raises(LoginError):
            authenticate(roles, "alice", "Wrong-pass-1", now=start)
    roles.commit()
    # the attempts are stamped by the database default (now); move past the window
    later = utcnow() + timedelta(minutes=settings.lockout_window_minutes + 1)
    with pytest.raises(LoginError) as err:
        authenticate(roles, "alice", "Wrong-pass-2", now=later)
    assert err.value.reason == "invalid"
    assert authenticate(roles, "alice", GOOD, now=later).username == "alice"


def test_inactive_account_cannot_log_in(roles):
    user = make_user(roles)
    user.active = False
    roles.commit()
    with pytest.raises(LoginError) as err:
        authenticate(roles, "alice", GOOD)
    assert err.value.reason == "inactive"


def test_api_token_is_stored_hashed_and_can_expire_or_be_revoked(roles):
    user = make_user(roles, "his", role="hospital_prevention_head")
    token, secret = create_token(roles, user, "HIS interface")
    roles.commit()
    assert secret.startswith("yf_") and secret not in token.token_sha256
    assert user_for_token(roles, secret).id == user.id
    assert user_for_token(roles, secret + "x") is None
    assert user_for_token(roles, "garbage") is None
    assert user_for_token(roles, secret, now=token.expires_at + timedelta(seconds=1)) is None
    revoke_token(roles, token, actor="his")
    roles.commit()
    assert user_for_token(roles, secret) is None
    assert roles.scalars(select(ApiToken)).one().revoked_at is not None


def test_roles_load_idempotently_and_keep_admin_edits(session):
    first = load_roles(session)
    assert first.added >= 8
    again = load_roles(session)
    assert again.added == 0 and again.updated == 0
    accounts.edit_role(session, "city_cdc", actor="admin", permissions=["card.view"])
    session.commit()
    third = load_roles(session)
    assert third.kept_edited == 1
    assert session.get(Role, "city_cdc").permissions == ["card.view"]


def test_every_role_in_the_file_has_a_known_scope_and_permissions(session):
    load_roles(session)
    roles = session.scalars(select(Role)).all()
    codes = {r.code for r in roles}
    assert {
        "hospital_reporter",
        "hospital_prevention_head",
        "county_cdc_reviewer",
        "county_cdc_epidemiologist",
        "city_cdc",
        "health_commission_leader",
        "department_liaison",
        "system_admin",
    } <= codes
    reporter = session.get(Role, "hospital_reporter")
    assert reporter.allows("card.create") and not reporter.allows("card.review")
    assert session.get(Role, "county_cdc_reviewer").allows("card.review")
    assert not session.get(Role, "department_liaison").allows("card.view")


def test_demo_users_one_per_role_and_rerun_resets_passwords(session):
    rows = accounts.create_demo_users(session)
    session.commit()
    roles = {accounts.get_user(session, u).role_code for u, _, _ in rows}
    assert len(roles) == 8
    for username, password, _label in rows[:2]:
        assert authenticate(session, username, password).username == username
    again = accounts.create_demo_users(session)
    session.commit()
    assert len(again) == len(rows)
    assert authenticate(session, again[0][0], again[0][1])
