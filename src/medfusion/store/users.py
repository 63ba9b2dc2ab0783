"""Accounts: argon2id password hashes (OWASP Password Storage Cheat Sheet), one role each, and for
``patient`` accounts the one record they are linked to.

Administration (issue 16) changes an account in place: disable / enable, a temporary password the user must
replace at the next sign-in, unlock, a new role, a forced sign-out. Each of them that ends a session raises
``token_version`` — tokens carry the version they were issued under, so older ones stop working on their
next request. The functions here change rows only; :mod:`medfusion.store.account_admin` audits them for the
API, the CLI and the admin page alike. The last active administrator can be neither disabled nor demoted
(:class:`LastAdmin`, 409): nobody could administer the platform afterwards."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime
from typing import NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medfusion.errors import Conflict, InvalidInput, NotFound
from medfusion.store.access import Role
from medfusion.store.tables import PatientRow, UserRow

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("medfusion-timing-equaliser")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{3,64}$")
MIN_PASSWORD_LENGTH = 8


class LastAdmin(Conflict):
    """Disabling or demoting the only active administrator would leave nobody to administer the platform."""

    code = "last_admin"


class User(BaseModel):
    id: int
    username: str
    role: Role
    patient_id: str | None = None
    active: bool = True
    must_change_password: bool = False
    created_at: datetime | None = None


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        patient_id=row.patient_id,
        active=row.active,
        must_change_password=bool(row.must_change_password),
        created_at=row.created_at,
    )


def _check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.for_field(
            field, f"密码至少{MIN_PASSWORD_LENGTH}位 (at least {MIN_PASSWORD_LENGTH} characters)"
        )


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput.for_field(
            "role", f"未知角色 unknown role; one of {[r.value for r in Role]}"
        ) from None


def _check_link(session: Session, role: Role, patient_id: str | None) -> None:
    if role is Role.patient and not patient_id:
        raise InvalidInput.for_field(
            "patient_id", "患者账号必须关联一份病历 (patient accounts need --patient-id)"
        )
    if role is not Role.patient and patient_id:
        raise InvalidInput.for_field(
            "patient_id", "只有患者账号关联病历 (only patient accounts link to a record)"
        )
    if patient_id is not None and session.get(PatientRow, patient_id) is None:
        raise NotFound(f"患者不存在 patient {patient_id!r} not found", details={"field": "patient_id"})


def create_user(
    session: Session, username: str, password: str, role: Role | str, patient_id: str | None = None
) -> User:
    if not _USERNAME.match(username):
        raise InvalidInput.for_field(
            "username", "用户名须为3–64位字母、数字或 _.@- (3–64 letters, digits, _.@-)"
        )
    _check_password(password)
    role = _role(role)
    _check_link(session, role, patient_id)
    if session.execute(select(UserRow.id).where(UserRow.username == username)).first():
        raise Conflict(f"用户名已存在 username {username!r} exists", details={"field": "username"})
    row = UserRow(
        username=username,
        password_hash=_hasher.hash(password),
        role=role.value,
        patient_id=patient_id,
        active=True,
        created_at=datetime.now(UTC),
        token_version=0,
        must_change_password=False,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"用户名已存在 username {username!r} exists", details={"field": "username"}) from None
    return _user(row)


def get_user(session: Session, username: str) -> User | None:
    row = session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()
    return _user(row) if row else None


class Standing(NamedTuple):
    """What a request needs to know of an active account (a plain tuple: it is read on every request)."""

    role: Role
    patient_id: str | None
    token_version: int
    must_change_password: bool


_STANDING = select(
    UserRow.role, UserRow.patient_id, UserRow.active, UserRow.token_version, UserRow.must_change_password
).where(UserRow.username == bindparam("username"))


def standing(conn: Connection | Session, username: str) -> Standing | None:
    """Role, linked record and token version of an active account (None if missing or disabled): the
    per-request check behind every token, so one indexed SELECT of five columns — no ORM object, no
    password hash."""
    row = conn.execute(_STANDING, {"username": username}).first()
    if row is None or not row.active:
        return None
    return Standing(
        role=Role(row.role),
        patient_id=row.patient_id,
        token_version=int(row.token_version),
        must_change_password=bool(row.must_change_password),
    )


def list_users(session: Session) -> list[User]:
    return [_user(r) for r in session.execute(select(UserRow).order_by(UserRow.id)).scalars()]


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this password, or None. Unknown names cost the same hashing time."""
    row = session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()
    if row is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    return _user(row) if row.active else None


def _row(session: Session, username: str) -> UserRow:
    row = session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"用户不存在 user {username!r} not found", details={"field": "username"})
    return row


def _guard_last_admin(session: Session, row: UserRow) -> None:
    """Refuse when ``row`` is the only active administrator (it is about to stop being one)."""
    if row.role != Role.admin.value or not row.active:
        return
    others = session.execute(
        select(UserRow.id).where(
            UserRow.role == Role.admin.value, UserRow.active.is_(True), UserRow.id != row.id
        )
    ).first()
    if others is None:
        raise LastAdmin(
            "不能停用或降级最后一位系统管理员 the last active administrator cannot be disabled or demoted",
            details={"username": row.username},
        )


def set_active(session: Session, username: str, active: bool) -> User:
    """Disable (its sessions end at once) or re-enable an account; enabling does not revive old tokens."""
    row = _row(session, username)
    if not active:
        _guard_last_admin(session, row)
    if row.active != active:
        row.active = active
        row.token_version += 1
    session.flush()
    return _user(row)


def set_role(session: Session, username: str, role: Role | str, patient_id: str | None = None) -> User:
    """A new role (and, for ``patient``, the record the account is linked to); takes effect on the next
    request, since every request re-reads the account."""
    row = _row(session, username)
    new = _role(role)
    _check_link(session, new, patient_id)
    if new is not Role.admin:
        _guard_last_admin(session, row)
    row.role, row.patient_id = new.value, patient_id
    session.flush()
    return _user(row)


def reset_password(session: Session, username: str, temporary: str) -> User:
    """An administrator's temporary password: the user must choose their own at the next sign-in, every
    existing session ends, and a lockout is cleared (the reset is how a locked-out user gets back in)."""
    _check_password(temporary)
    row = _row(session, username)
    row.password_hash = _hasher.hash(temporary)
    row.must_change_password = True
    row.token_version += 1
    row.unlocked_at = datetime.now(UTC)
    session.flush()
    return _user(row)


def unlock(session: Session, username: str) -> User:
    """Failed sign-ins so far stop counting towards a lockout (``login_guard``): it may sign in now."""
    row = _row(session, username)
    row.unlocked_at = datetime.now(UTC)
    session.flush()
    return _user(row)


def unlocked_at(session: Session, username: str) -> datetime | None:
    value = session.execute(select(UserRow.unlocked_at).where(UserRow.username == username)).scalar()
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value


def revoke_sessions(session: Session, username: str) -> User:
    """Force sign-out: every token issued so far stops working."""
    row = _row(session, username)
    row.token_version += 1
    session.flush()
    return _user(row)


def change_own_password(session: Session, username: str, current: str, new: str) -> User:
    """The user's own new password (after a reset, or any time): the current one is checked, the new one
    must differ from it, and every other session ends (the caller issues a fresh token)."""
    row = _row(session, username)
    try:
        _hasher.verify(row.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise InvalidInput.for_field(
            "current_password", "当前密码不正确 the current password is wrong", code="wrong_password"
        ) from None
    _check_password(new, "new_password")
    if new == current:
        raise InvalidInput.for_field("new_password", "新密码不能与当前密码相同 choose a different password")
    row.password_hash = _hasher.hash(new)
    row.must_change_password = False
    row.token_version += 1
    session.flush()
    return _user(row)
