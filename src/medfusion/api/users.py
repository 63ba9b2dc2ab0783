"""/api/users — account administration (``user:manage``): list, add, disable / enable, reset a password,
unlock, change a role, force a sign-out; and ``/api/users/me/password``, a user's own password change (the
one thing a temporary password allows). Every change is audited (:mod:`medfusion.store.account_admin`);
the last active administrator cannot be disabled or demoted (409 ``last_admin``). Times (``created_at``,
``locked_until``) are UTC; pages and the CLI show them in the display zone (``MEDFUSION_TIMEZONE``,
Asia/Shanghai by default) with the zone's name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from medfusion.api.deps import DB, AppSettings, CurrentPrincipal, requires
from medfusion.store.access import Permission, Principal, Role
from medfusion.store.account_admin import Account, AccountAdmin, change_own_password
from medfusion.store.tokens import Token
from medfusion.store.users import User

router = APIRouter(prefix="/api/users", tags=["users 用户"])


class NewUser(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: Role
    patient_id: str | None = Field(default=None, max_length=64)


class TemporaryPassword(BaseModel):
    temporary_password: str = Field(
        min_length=8, max_length=256, description="The user must replace it at their next sign-in."
    )


class RoleChange(BaseModel):
    role: Role
    patient_id: str | None = Field(
        default=None, max_length=64, description="The record a patient account is linked to."
    )


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


def _manager(action: str) -> requires:
    return requires(Permission.user_manage, action, "需要用户管理权限 user:manage required")


Username = Annotated[str, Path(min_length=3, max_length=64, description="用户名 the account's username")]


Listing = Annotated[Principal, Depends(_manager("user.list"))]
Creating = Annotated[Principal, Depends(_manager("user.create"))]
Disabling = Annotated[Principal, Depends(_manager("user.disable"))]
Enabling = Annotated[Principal, Depends(_manager("user.enable"))]
Resetting = Annotated[Principal, Depends(_manager("user.reset_password"))]
Unlocking = Annotated[Principal, Depends(_manager("user.unlock"))]
ChangingRole = Annotated[Principal, Depends(_manager("user.role"))]
SigningOut = Annotated[Principal, Depends(_manager("user.sign_out"))]


@router.get("", response_model=list[Account], summary="用户列表（含锁定状态）")
def get_users(db: DB, settings: AppSettings, principal: Listing) -> list[Account]:
    return AccountAdmin(db, settings, principal).accounts()


@router.post("", response_model=User, status_code=201, summary="新建用户")
def add_user(body: NewUser, db: DB, settings: AppSettings, principal: Creating) -> User:
    return AccountAdmin(db, settings, principal).add(body.username, body.password, body.role, body.patient_id)


@router.post("/me/password", response_model=Token, summary="修改本人密码（临时密码登录后必须先修改）")
def change_password(
    body: PasswordChange, db: DB, settings: AppSettings, principal: CurrentPrincipal
) -> Token:
    """Your other sessions end; go on with the token returned."""
    return change_own_password(db, settings, principal, body.current_password, body.new_password)


@router.post("/{username}/disable", response_model=User, summary="停用账号（其会话立即失效）")
def disable_user(username: Username, db: DB, settings: AppSettings, principal: Disabling) -> User:
    return AccountAdmin(db, settings, principal).disable(username)


@router.post("/{username}/enable", response_model=User, summary="启用账号")
def enable_user(username: Username, db: DB, settings: AppSettings, principal: Enabling) -> User:
    return AccountAdmin(db, settings, principal).enable(username)


@router.post("/{username}/password", response_model=User, summary="重置密码（临时密码，下次登录须修改）")
def reset_password(
    username: Username, body: TemporaryPassword, db: DB, settings: AppSettings, principal: Resetting
) -> User:
    """Every session of the account ends and a lockout is cleared."""
    return AccountAdmin(db, settings, principal).reset_password(username, body.temporary_password)


@router.post("/{username}/unlock", response_model=User, summary="解除登录锁定")
def unlock_user(username: Username, db: DB, settings: AppSettings, principal: Unlocking) -> User:
    return AccountAdmin(db, settings, principal).unlock(username)


@router.put("/{username}/role", response_model=User, summary="更改角色")
def change_role(
    username: Username, body: RoleChange, db: DB, settings: AppSettings, principal: ChangingRole
) -> User:
    return AccountAdmin(db, settings, principal).change_role(username, body.role, body.patient_id)


@router.post("/{username}/sign-out", response_model=User, summary="强制下线（吊销全部令牌）")
def sign_out_user(username: Username, db: DB, settings: AppSettings, principal: SigningOut) -> User:
    return AccountAdmin(db, settings, principal).sign_out(username)
