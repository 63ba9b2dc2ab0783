"""Sign-in and bearer tokens (signed, expiring JWTs, HS256) — shared by the API and the web UI.

The token names the user; every request re-reads the account, so a deactivated user or a changed role
takes effect at once rather than when the token expires. Every sign-in attempt is audited; repeated
failures lock the account for a while (``login_guard``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
from pydantic import BaseModel, Field

from medfusion.errors import AccountLocked, AuthenticationFailed, PermissionDenied
from medfusion.record.clinical_time import SHANGHAI
from medfusion.settings import Settings
from medfusion.store import audit
from medfusion.store.access import Permission, Principal, user_principal
from medfusion.store.database import Database
from medfusion.store.login_guard import locked_until
from medfusion.store.users import authenticate, get_user

_ALGORITHM = "HS256"


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


def issue_token(settings: Settings, username: str) -> tuple[str, int]:
    ttl = settings.token_ttl_minutes * 60
    now = datetime.now(UTC)
    claims = {"sub": username, "iat": now, "exp": now + timedelta(seconds=ttl), "jti": secrets.token_hex(8)}
    return jwt.encode(claims, settings.signing_key(), algorithm=_ALGORITHM), ttl


def sign_in(db: Database, settings: Settings, credentials: Credentials) -> Token:
    """Check lockout and password, audit the attempt, issue a token — for the API and the web login alike."""
    actor_name = credentials.username[:64]
    with db.session() as session:
        lock = locked_until(session, actor_name, settings.login_max_failures, settings.login_lockout_minutes)
        if lock is not None:
            audit.record(
                session,
                audit.Actor(actor_name, "-"),
                "auth.login",
                audit.Outcome.denied,
                detail={"reason": "locked"},
            )
    if lock is not None:
        raise AccountLocked(
            f"连续登录失败，账号锁定至 {lock.astimezone(SHANGHAI):%H:%M} "
            "account locked after repeated failed logins",
            details={"locked_until": lock.isoformat()},
        )
    with db.session() as session:
        user = authenticate(session, credentials.username, credentials.password)
        outcome = audit.Outcome.success if user else audit.Outcome.denied
        audit.record(
            session, audit.Actor(actor_name, user.role.value if user else "-"), "auth.login", outcome
        )
    if user is None:
        raise AuthenticationFailed("用户名或密码错误 invalid username or password")
    access, ttl = issue_token(settings, user.username)
    return Token(access_token=access, expires_in=ttl, role=user.role.value)


def principal_from_token(db: Database, settings: Settings, raw: str | None) -> Principal:
    if not raw:
        raise AuthenticationFailed("需要登录 missing bearer token")
    try:
        claims = jwt.decode(
            raw, settings.signing_key(), algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("令牌已过期 token expired", code="token_expired") from None
    except jwt.PyJWTError:
        raise AuthenticationFailed("令牌无效 invalid token", code="invalid_token") from None
    with db.read_session() as session:
        user = get_user(session, str(claims["sub"]))
    if user is None or not user.active:
        raise AuthenticationFailed("账号不存在或已停用 account missing or disabled")
    return user_principal(user.username, user.role, user.patient_id)


def require(db: Database, principal: Principal, permission: Permission, action: str, message: str) -> None:
    """Refuse a principal without ``permission``: the refusal is audited, then raised as 403."""
    if not principal.may(permission):
        with db.session() as session:
            audit.record(session, principal.actor, action, audit.Outcome.denied)
        raise PermissionDenied(message)
