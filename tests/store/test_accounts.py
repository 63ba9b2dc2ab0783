"""Account administration in the store (issue 16): token versions end sessions, a temporary password
allows nothing but its change, an unlock clears a lockout now, the last administrator stays one, and every
change is audited — on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select

from medfusion.errors import AuthenticationFailed, InvalidInput, NotFound, PermissionDenied
from medfusion.settings import Settings
from medfusion.store import audit, users
from medfusion.store.access import (
    ROLE_LABELS,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    system_principal,
    user_principal,
)
from medfusion.store.account_admin import AccountAdmin, change_own_password
from medfusion.store.database import Database, _alembic_config
from medfusion.store.login_guard import locked_until
from medfusion.store.tables import UserRow
from medfusion.store.tokens import Credentials, principal_from_token, require, sign_in, verified_tokens

PASSWORD = "correct-horse-battery"


@pytest.fixture
def admin(db: Database, settings: Settings) -> AccountAdmin:
    verified_tokens.clear()
    with db.session() as session:
        users.create_user(session, "root_admin", PASSWORD, Role.admin)
        users.create_user(session, "dr_wang", PASSWORD, Role.doctor)
    return AccountAdmin(db, settings, system_principal())


def _login(db: Database, settings: Settings, username: str, password: str = PASSWORD) -> str:
    return sign_in(db, settings, Credentials(username=username, password=password)).access_token


def _actions(db: Database, prefix: str) -> list[tuple[str, str, dict[str, object]]]:
    with db.session() as session:
        found = audit.search(session, audit.AuditQuery(action=prefix), limit=100)
    return [(e.action, e.outcome, e.detail) for e in reversed(found)]


def test_pharmacist_reads_medication_lists_and_is_labelled_yaoshi() -> None:
    held = ROLE_PERMISSIONS[Role.pharmacist]
    assert {Permission.patient_search, Permission.patient_read} <= held
    assert {Permission.prescription_review, Permission.drug_knowledge} <= held
    assert Permission.patient_write not in held and Permission.identifier_reveal not in held
    assert ROLE_LABELS[Role.pharmacist] == "药师"


def test_forced_sign_out_ends_every_session_at_once(
    db: Database, settings: Settings, admin: AccountAdmin
) -> None:
    first, second = _login(db, settings, "dr_wang"), _login(db, settings, "dr_wang")
    assert principal_from_token(db, settings, first).username == "dr_wang"  # verified and remembered
    admin.sign_out("dr_wang")
    for token in (first, second):
        with pytest.raises(AuthenticationFailed) as refused:
            principal_from_token(db, settings, token)
        assert refused.value.code == "token_revoked"
    assert principal_from_token(db, settings, _login(db, settings, "dr_wang")).role == "doctor"
    assert _actions(db, "user.sign_out") == [("user.sign_out", "success", {"username": "dr_wang"})]


def test_disable_ends_sessions_and_enable_does_not_revive_them(
    db: Database, settings: Settings, admin: AccountAdmin
) -> None:
    token = _login(db, settings, "dr_wang")
    admin.disable("dr_wang")
    with pytest.raises(AuthenticationFailed):
        principal_from_token(db, settings, token)
    with pytest.raises(AuthenticationFailed):
        _login(db, settings, "dr_wang")
    admin.enable("dr_wang")
    with pytest.raises(AuthenticationFailed) as refused:
        principal_from_token(db, settings, token)
    assert refused.value.code == "token_revoked"
    assert principal_from_token(db, settings, _login(db, settings, "dr_wang")).username == "dr_wang"


def test_a_temporary_password_allows_only_its_own_change(
    db: Database, settings: Settings, admin: AccountAdmin
) -> None:
    old = _login(db, settings, "dr_wang")
    admin.reset_password("dr_wang", "temporary-123")
    with pytest.raises(AuthenticationFailed):
        principal_from_token(db, settings, old)  # the reset ended the session
    with pytest.raises(AuthenticationFailed):
        _login(db, settings, "dr_wang")  # the old password is gone
    token = sign_in(db, settings, Credentials(username="dr_wang", password="temporary-123"))
    assert token.must_change_password
    who = principal_from_token(db, settings, token.access_token)
    assert who.must_change_password and not who.may(Permission.patient_read)
    with pytest.raises(PermissionDenied) as refused:
        require(db, who, Permission.patient_read, "patient.read", "needs patient:read")
    assert refused.value.code == "password_change_required"
    with pytest.raises(InvalidInput) as wrong:
        change_own_password(db, settings, who, "not-the-temporary", "my-own-secret-1")
    assert wrong.value.code == "wrong_password"
    with pytest.raises(InvalidInput):
        change_own_password(db, settings, who, "temporary-123", "temporary-123")  # must differ
    fresh = change_own_password(db, settings, who, "temporary-123", "my-own-secret-1")
    assert not fresh.must_change_password
    with pytest.raises(AuthenticationFailed):
        principal_from_token(db, settings, token.access_token)  # the temporary session ended too
    assert principal_from_token(db, settings, fresh.access_token).may(Permission.patient_read)
    assert [a for a, o, _ in _actions(db, "user.")] == [
        "user.reset_password",
        "user.password",
        "user.password",
        "user.password",
    ]
    assert [o for _, o, _ in _actions(db, "user.password")] == ["failed", "failed", "success"]
    assert all("temporary" not in str(d) and "secret" not in str(d) for _, _, d in _actions(db, "user."))


def test_unlock_clears_a_lockout_now(db: Database, settings: Settings, admin: AccountAdmin) -> None:
    for _ in range(settings.login_max_failures):
        with pytest.raises(AuthenticationFailed):
            _login(db, settings, "dr_wang", "wrong-password")
    with db.session() as session:
        until = locked_until(session, "dr_wang", settings.login_max_failures, settings.login_lockout_minutes)
    assert until is not None and until > datetime.now(UTC) + timedelta(
        minutes=settings.login_lockout_minutes - 1
    )
    assert next(a for a in admin.accounts() if a.username == "dr_wang").locked_until == until
    admin.unlock("dr_wang")
    assert next(a for a in admin.accounts() if a.username == "dr_wang").locked_until is None
    assert _login(db, settings, "dr_wang")  # at once, not when the timer runs out
    # failures after the unlock count again from zero
    for _ in range(settings.login_max_failures):
        with pytest.raises(AuthenticationFailed):
            _login(db, settings, "dr_wang", "wrong-password")
    with db.session() as session:
        assert locked_until(session, "dr_wang", settings.login_max_failures, settings.login_lockout_minutes)


def test_the_last_active_admin_can_be_neither_disabled_nor_demoted(
    db: Database, settings: Settings, admin: AccountAdmin
) -> None:
    changes: list[Callable[[], object]] = [
        lambda: admin.disable("root_admin"),
        lambda: admin.change_role("root_admin", "doctor"),
    ]
    for change in changes:
        with pytest.raises(users.LastAdmin) as refused:
            change()
        assert refused.value.status_code == 409 and refused.value.code == "last_admin"
    assert [(a, o) for a, o, _ in _actions(db, "user.")] == [
        ("user.disable", "failed"),
        ("user.role", "failed"),
    ]
    admin.add("second_admin", PASSWORD, "admin")
    admin.change_role("root_admin", "auditor")  # another admin remains: allowed
    with pytest.raises(users.LastAdmin):
        admin.disable("second_admin")
    admin.disable("dr_wang")  # other accounts are unaffected by the guard


def test_role_changes_validate_the_link_to_a_record(
    db: Database, settings: Settings, admin: AccountAdmin
) -> None:
    with pytest.raises(InvalidInput):
        admin.change_role("dr_wang", "patient")  # a patient account needs its record
    with pytest.raises(NotFound):
        admin.change_role("dr_wang", "patient", "NOPE")
    with pytest.raises(InvalidInput):
        admin.change_role("dr_wang", "surgeon")
    with pytest.raises(NotFound):
        admin.sign_out("nobody")
    changed = admin.change_role("dr_wang", "pharmacist")
    assert changed.role is Role.pharmacist
    assert _actions(db, "user.role")[-1] == (
        "user.role",
        "success",
        {"username": "dr_wang", "role": "pharmacist", "from": "doctor"},
    )


def test_a_non_admin_may_not_administer(db: Database, settings: Settings, admin: AccountAdmin) -> None:
    doctor = AccountAdmin(db, settings, user_principal("dr_wang", "doctor", None))
    with pytest.raises(PermissionDenied):
        doctor.disable("root_admin")
    with pytest.raises(PermissionDenied):
        doctor.accounts()
    assert ("user.disable", "denied", {}) in _actions(db, "user.")


def test_a_token_from_before_token_versions_counts_as_version_zero(
    db: Database, settings: Settings, admin: AccountAdmin
) -> None:
    import jwt

    now = datetime.now(UTC)
    legacy = jwt.encode(
        {"sub": "dr_wang", "iat": now, "exp": now + timedelta(minutes=5)},
        settings.signing_key(),
        algorithm="HS256",
    )
    assert principal_from_token(db, settings, legacy).username == "dr_wang"
    admin.sign_out("dr_wang")
    with pytest.raises(AuthenticationFailed):
        principal_from_token(db, settings, legacy)


def test_upgrading_to_0015_keeps_accounts_and_their_passwords(database_url: str, settings: Settings) -> None:
    """Accounts created under 0014 get version 0, no temporary password, no unlock; they sign in as before."""
    database = Database(database_url)
    cfg = _alembic_config()
    try:
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0014")
            assert "token_version" not in {c["name"] for c in inspect(conn).get_columns("users")}
            conn.execute(
                insert(UserRow.__table__).values(  # type: ignore[arg-type]
                    username="old_doctor",
                    password_hash=users._hasher.hash(PASSWORD),
                    role="doctor",
                    active=True,
                    created_at=datetime.now(UTC),
                )
            )
        assert database.upgrade() == Database.head_revision()
        with database.session() as session:
            row = session.execute(select(UserRow).where(UserRow.username == "old_doctor")).scalar_one()
            assert (row.token_version, row.must_change_password, row.unlocked_at) == (0, False, None)
        token = _login(database, settings, "old_doctor")
        assert principal_from_token(database, settings, token).role == "doctor"
    finally:
        database.dispose()
