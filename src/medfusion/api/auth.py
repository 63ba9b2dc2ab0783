"""OAuth2 password flow with signed, expiring JWTs (HS256), and the ``current principal`` dependency.

The token names the user; every request re-reads the account, so a deactivated user or a changed role
takes effect at once rather than when the token expires.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, Field, ValidationError

from medfusion.errors import AccountLocked, AuthenticationFailed, InvalidInput, PermissionDenied
from medfusion.record.clinical_time import SHANGHAI
from medfusion.settings import Settings
from medfusion.store import audit
from medfusion.store.access import Permission, Principal, user_principal
from medfusion.store.database import Database
from medfusion.store.login_guard import locked_until
from medfusion.store.users import authenticate, get_user

router = APIRouter(prefix="/api/auth", tags=["auth 认证"])
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
_ALGORITHM = "HS256"


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def issue_token(settings: Settings, username: str) -> tuple[str, int]:
    ttl = settings.token_ttl_minutes * 60
    now = datetime.now(UTC)
    claims = {"sub": username, "iat": now, "exp": now + timedelta(seconds=ttl), "jti": secrets.token_hex(8)}
    return jwt.encode(claims, settings.signing_key(), algorithm=_ALGORITHM), ttl


async def _read_credentials(request: Request) -> Credentials:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            data: Any = json.loads(await request.body() or b"{}")
        else:
            form = await request.form()
            data = {k: form.get(k) for k in ("username", "password") if form.get(k) is not None}
        return Credentials.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(
            "需要 username 与 password (form or JSON body)",
            details=[{"field": "username/password", "message": type(exc).__name__}],
        ) from None


@router.post("/token", response_model=Token, summary="登录获取令牌 (OAuth2 password flow; form or JSON)")
async def token(request: Request) -> Token:
    credentials = await _read_credentials(request)
    return sign_in(get_db(request), get_settings_dep(request), credentials)


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


def current_principal(request: Request, raw: Annotated[str | None, Depends(oauth2)]) -> Principal:
    if not raw:
        raise AuthenticationFailed("需要登录 missing bearer token")
    return principal_from_token(get_db(request), get_settings_dep(request), raw)


def principal_from_token(db: Database, settings: Settings, raw: str) -> Principal:
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


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
DB = Annotated[Database, Depends(get_db)]


class Me(BaseModel):
    username: str
    role: str
    patient_id: str | None


@router.get("/me", response_model=Me, summary="当前用户 who am I")
def me(principal: CurrentPrincipal) -> Me:
    return Me(username=principal.username, role=principal.role, patient_id=principal.patient_id)
