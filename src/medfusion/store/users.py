"""Accounts: argon2id password hashes (OWASP Password Storage Cheat Sheet), one role each, and for
``patient`` accounts the one record they are linked to."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime

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


class User(BaseModel):
    id: int
    username: str
    role: Role
    patient_id: str | None = None
    active: bool = True


def _user(row: UserRow) -> User:
    return User(
        id=row.id, username=row.username, role=Role(row.role), patient_id=row.patient_id, active=row.active
    )


def create_user(
    session: Session, username: str, password: str, role: Role | str, patient_id: str | None = None
) -> User:
    if not _USERNAME.match(username):
        raise InvalidInput.for_field(
            "username", "用户名须为3–64位字母、数字或 _.@- (3–64 letters, digits, _.@-)"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.for_field(
            "password", f"密码至少{MIN_PASSWORD_LENGTH}位 (at least {MIN_PASSWORD_LENGTH} characters)"
        )
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput.for_field(
            "role", f"未知角色 unknown role; one of {[r.value for r in Role]}"
        ) from None
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
    if session.execute(select(UserRow.id).where(UserRow.username == username)).first():
        raise Conflict(f"用户名已存在 username {username!r} exists", details={"field": "username"})
    row = UserRow(
        username=username,
        password_hash=_hasher.hash(password),
        role=role.value,
        patient_id=patient_id,
        active=True,
        created_at=datetime.now(UTC),
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


_STANDING = select(UserRow.role, UserRow.patient_id, UserRow.active).where(
    UserRow.username == bindparam("username")
)


def standing(conn: Connection | Session, username: str) -> tuple[Role, str | None] | None:
    """Role and linked record of an active account (None if missing or disabled): the per-request check
    behind every token, so one indexed SELECT of three columns — no ORM object, no password hash."""
    row = conn.execute(_STANDING, {"username": username}).first()
    if row is None or not row.active:
        return None
    return Role(row.role), row.patient_id


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
