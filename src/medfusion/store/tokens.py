"""Sign-in and bearer tokens (signed, expiring JWTs, HS256) — shared by the API and the web UI.

The token names the user; every request re-reads the account, so a deactivated user or a changed role
takes effect at once rather than when the token expires. Every sign-in attempt is audited; repeated
failures lock the account for a while (``login_guard``). Passwords are checked (argon2id) only at
sign-in, never per request.

Per request (issue 15 part 7), a token costs one signature check the first time this process sees it
(the verified subject and expiry are then kept in a bounded cache keyed by the token and the signing
key — the same bytes under the same key always verify the same way; expiry is still checked on every
use) and one three-column SELECT of the account on a plain read connection. The account is never cached:
that SELECT is what keeps revocation immediate in every worker process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from pydantic import BaseModel, Field

from medfusion.errors import AccountLocked, AuthenticationFailed, PermissionDenied
from medfusion.record.clinical_time import SHANGHAI
from medfusion.settings import Settings
from medfusion.store import audit
from medfusion.store.access import Permission, Principal, user_principal
from medfusion.store.database import Database
from medfusion.store.login_guard import locked_until
from medfusion.store.users import authenticate, standing

_ALGORITHM = "HS256"
_VERIFIED_MAX = 4096  # distinct live tokens kept verified per process; the oldest is dropped beyond it


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


class _VerifiedTokens:
    """Subject and expiry of tokens whose signature this process has checked, least recently used out."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw: str, key: str) -> tuple[str, float] | None:
        with self._lock:
            found = self._items.get((raw, key))
            if found is not None:
                self._items.move_to_end((raw, key))
            return found

    def put(self, raw: str, key: str, subject: str, expires: float) -> None:
        with self._lock:
            self._items[(raw, key)] = (subject, expires)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


verified_tokens = _VerifiedTokens(_VERIFIED_MAX)
_now = time.time  # seconds since the epoch, as ``exp`` counts them (a seam for tests)
_generated_keys: dict[Path, str] = {}


def _signing_key(settings: Settings) -> str:
    """The settings' key; a key generated under the data directory is read from its file once per process."""
    if settings.secret_key:
        return settings.secret_key
    where = settings.data_dir.expanduser().absolute()
    key = _generated_keys.get(where)
    if key is None:
        key = _generated_keys[where] = settings.signing_key()
    return key


def _subject(settings: Settings, raw: str) -> str:
    """The token's user, once its signature and expiry hold."""
    key = _signing_key(settings)
    known = verified_tokens.get(raw, key)
    if known is None:
        try:
            claims = jwt.decode(raw, key, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("令牌已过期 token expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise AuthenticationFailed("令牌无效 invalid token", code="invalid_token") from None
        known = (str(claims["sub"]), float(claims["exp"]))
        verified_tokens.put(raw, key, *known)
    subject, expires = known
    if _now() >= expires:  # PyJWT's own rule (no leeway): expired once now reaches ``exp``
        raise AuthenticationFailed("令牌已过期 token expired", code="token_expired")
    return subject


def principal_from_token(db: Database, settings: Settings, raw: str | None) -> Principal:
    if not raw:
        raise AuthenticationFailed("需要登录 missing bearer token")
    username = _subject(settings, raw)
    with db.read_engine.connect() as conn:
        account = standing(conn, username)
        conn.rollback()
    if account is None:
        raise AuthenticationFailed("账号不存在或已停用 account missing or disabled")
    role, patient_id = account
    return user_principal(username, role, patient_id)


def require(db: Database, principal: Principal, permission: Permission, action: str, message: str) -> None:
    """Refuse a principal without ``permission``: the refusal is audited, then raised as 403."""
    if not principal.may(permission):
        with db.session() as session:
            audit.record(session, principal.actor, action, audit.Outcome.denied)
        raise PermissionDenied(message)
