"""Sign-in and bearer tokens (signed, expiring JWTs, HS256) — shared by the API and the web UI.

The token names the user and the account's ``token_version`` it was issued under; every request re-reads
the account, so a deactivated user, a changed role or a forced sign-out (the version raised, see
``store/users``) takes effect at once rather than when the token expires. An account holding a temporary
password signs in, but its principal may do nothing except choose a new password
(``password_change_required``). Every sign-in attempt is audited; repeated
failures lock the account for a while (``login_guard``). Passwords are checked (argon2id) only at
sign-in, never per request.

Per request (issue 15 part 7), a token costs one signature check the first time this process sees it
(the verified subject and expiry are then kept in a bounded cache keyed by the token and the signing
key — the same bytes under the same key always verify the same way; expiry is still checked on every
use) and, at most once per ``account_cache_seconds`` (default 2 s) per account and process, one SELECT of
the account's standing on a plain read connection. A change to an account made in this process (disable,
role, reset, forced sign-out) drops its cached standing at once; another worker process sees it within
``account_cache_seconds`` (0: read the account on every request). Kept for so short a time, the standing
spares nearly every request the read and the thread-pool hop it needs (:func:`cached_principal`).
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from pydantic import BaseModel, Field
from sqlalchemy import Engine, event
from sqlalchemy.sql.dml import UpdateBase

from medfusion.errors import AccountLocked, AuthenticationFailed, PermissionDenied
from medfusion.record.clinical_time import SHANGHAI
from medfusion.settings import Settings
from medfusion.store import audit
from medfusion.store.access import Permission, Principal, user_principal
from medfusion.store.database import Database
from medfusion.store.login_guard import locked_until
from medfusion.store.tables import UserRow
from medfusion.store.users import Standing, authenticate, standing

PASSWORD_CHANGE_REQUIRED = "password_change_required"

_ALGORITHM = "HS256"
_VERIFIED_MAX = 4096  # distinct live tokens kept verified per process; the oldest is dropped beyond it


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    # signed in with a temporary password: choose a new one (POST /api/users/me/password) before anything else
    must_change_password: bool = False


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


def issue_token(settings: Settings, username: str, version: int = 0) -> tuple[str, int]:
    """A token for ``username`` under its account's ``token_version`` (``ver``; absent counts as 0)."""
    ttl = settings.token_ttl_minutes * 60
    now = datetime.now(UTC)
    claims = {
        "sub": username,
        "ver": version,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=_ALGORITHM), ttl


def token_for(db: Database, settings: Settings, username: str) -> Token:
    """A fresh token for an active account under its current version (after the user changed their own
    password, which ended the sessions they had)."""
    with db.read_engine.connect() as conn:
        account = standing(conn, username)
        conn.rollback()
    if account is None:
        raise AuthenticationFailed("账号不存在或已停用 account missing or disabled")
    access, ttl = issue_token(settings, username, account.token_version)
    return Token(
        access_token=access,
        expires_in=ttl,
        role=account.role.value,
        must_change_password=account.must_change_password,
    )


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
        account = standing(session, user.username) if user else None
        outcome = audit.Outcome.success if user else audit.Outcome.denied
        audit.record(
            session,
            audit.Actor(actor_name, user.role.value if user else "-"),
            "auth.login",
            outcome,
            detail={"must_change_password": True} if account and account.must_change_password else None,
        )
    if user is None or account is None:
        raise AuthenticationFailed("用户名或密码错误 invalid username or password")
    access, ttl = issue_token(settings, user.username, account.token_version)
    return Token(
        access_token=access,
        expires_in=ttl,
        role=user.role.value,
        must_change_password=account.must_change_password,
    )


class _VerifiedTokens:
    """Subject, expiry and token version of tokens whose signature this process has checked, least
    recently used out."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], tuple[str, float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw: str, key: str) -> tuple[str, float, int] | None:
        with self._lock:
            found = self._items.get((raw, key))
            if found is not None:
                self._items.move_to_end((raw, key))
            return found

    def put(self, raw: str, key: str, subject: str, expires: float, version: int) -> None:
        with self._lock:
            self._items[(raw, key)] = (subject, expires, version)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


verified_tokens = _VerifiedTokens(_VERIFIED_MAX)
_now = time.time  # seconds since the epoch, as ``exp`` counts them (a seam for tests)
_clock = time.monotonic  # how old a cached standing is (a seam for tests)
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


def _subject(settings: Settings, raw: str) -> tuple[str, int]:
    """The token's user and the token version it names, once its signature and expiry hold."""
    key = _signing_key(settings)
    known = verified_tokens.get(raw, key)
    if known is None:
        try:
            claims = jwt.decode(raw, key, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("令牌已过期 token expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise AuthenticationFailed("令牌无效 invalid token", code="invalid_token") from None
        version = claims.get("ver", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise AuthenticationFailed("令牌无效 invalid token", code="invalid_token")
        known = (str(claims["sub"]), float(claims["exp"]), version)
        verified_tokens.put(raw, key, *known)
    subject, expires, version = known
    if _now() >= expires:  # PyJWT's own rule (no leeway): expired once now reaches ``exp``
        raise AuthenticationFailed("令牌已过期 token expired", code="token_expired")
    return subject, version


class _Standings:
    """Account standings read in the last ``account_cache_seconds``, per database, by username."""

    def __init__(self) -> None:
        self._items: weakref.WeakKeyDictionary[Database, dict[str, tuple[float, Standing]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, db: Database, username: str, ttl: float) -> Standing | None:
        if ttl <= 0:
            return None
        with self._lock:
            found = self._items.get(db, {}).get(username)
        if found is None or _clock() - found[0] >= ttl:
            return None
        return found[1]

    def put(self, db: Database, username: str, standing: Standing) -> None:
        with self._lock:
            self._items.setdefault(db, {})[username] = (_clock(), standing)

    def forget(self, username: str) -> None:
        with self._lock:
            for accounts in self._items.values():
                accounts.pop(username, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


standings = _Standings()


@event.listens_for(UserRow, "after_update")
@event.listens_for(UserRow, "after_delete")
def _account_changed(_mapper: Any, _connection: Any, row: UserRow) -> None:
    # at flush, before the commit: a change that is rolled back only costs the next request one read
    standings.forget(row.username)


@event.listens_for(Engine, "after_execute")
def _accounts_changed(_conn: Any, statement: Any, *_: Any) -> None:
    # an UPDATE or DELETE statement on the accounts (not through the ORM rows above): forget them all
    table = getattr(statement, "table", None) if isinstance(statement, UpdateBase) else None
    if getattr(table, "name", None) == UserRow.__tablename__:
        standings.clear()


def _principal(username: str, version: int, account: Standing | None) -> Principal:
    if account is None:
        raise AuthenticationFailed("账号不存在或已停用 account missing or disabled")
    if version != account.token_version:
        raise AuthenticationFailed(
            "会话已失效，请重新登录 session ended (signed out by an administrator or a password change)",
            code="token_revoked",
        )
    return user_principal(
        username, account.role, account.patient_id, must_change_password=account.must_change_password
    )


def cached_principal(db: Database, settings: Settings, raw: str | None) -> Principal | None:
    """The principal when the token was verified before and its account's standing is fresh in this
    process — no I/O, so the caller may stay on the event loop; ``None``: ask :func:`principal_from_token`."""
    if not raw:
        return None
    username, version = _subject(settings, raw)
    account = standings.get(db, username, settings.account_cache_seconds)
    return None if account is None else _principal(username, version, account)


def principal_from_token(db: Database, settings: Settings, raw: str | None) -> Principal:
    if not raw:
        raise AuthenticationFailed("需要登录 missing bearer token")
    username, version = _subject(settings, raw)
    account = standings.get(db, username, settings.account_cache_seconds)
    if account is None:
        with db.read_engine.connect() as conn:
            account = standing(conn, username)
            conn.rollback()
        if account is not None:
            standings.put(db, username, account)
    return _principal(username, version, account)


def require(db: Database, principal: Principal, permission: Permission, action: str, message: str) -> None:
    """Refuse a principal without ``permission``: the refusal is audited, then raised as 403. A principal
    holding a temporary password is refused everything until it has chosen its own."""
    refuse_pending_password(db, principal, action)
    if not principal.may(permission):
        with db.session() as session:
            audit.record(session, principal.actor, action, audit.Outcome.denied)
        raise PermissionDenied(message)


def password_change_required() -> PermissionDenied:
    return PermissionDenied(
        "请先修改临时密码 choose a new password first (/account/password, POST /api/users/me/password)",
        code=PASSWORD_CHANGE_REQUIRED,
    )


def refuse_pending_password(db: Database, principal: Principal, action: str) -> None:
    """Refuse (audited, 403 ``password_change_required``) a principal still holding a temporary password."""
    if principal.must_change_password:
        audit.append(
            db, principal.actor, action, audit.Outcome.denied, detail={"reason": PASSWORD_CHANGE_REQUIRED}
        )
        raise password_change_required()
