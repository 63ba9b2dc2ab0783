"""/api/users — account administration (``user:manage``); every change is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from medfusion.api.deps import DB, requires
from medfusion.errors import MedFusionError
from medfusion.store import audit
from medfusion.store.access import Permission, Principal, Role
from medfusion.store.users import User, create_user, list_users

router = APIRouter(prefix="/api/users", tags=["users 用户"])


class NewUser(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: Role
    patient_id: str | None = Field(default=None, max_length=64)


def _manager(action: str) -> requires:
    return requires(Permission.user_manage, action, "需要用户管理权限 user:manage required")


Listing = Annotated[Principal, Depends(_manager("user.list"))]
Creating = Annotated[Principal, Depends(_manager("user.create"))]


@router.get("", response_model=list[User], summary="用户列表")
def get_users(db: DB, principal: Listing) -> list[User]:
    with db.session() as session:
        users = list_users(session)
        audit.record(session, principal.actor, "user.list", detail={"count": len(users)})
    return users


@router.post("", response_model=User, status_code=201, summary="新建用户")
def add_user(body: NewUser, db: DB, principal: Creating) -> User:
    try:
        with db.session() as session:
            user = create_user(session, body.username, body.password, body.role, body.patient_id)
            audit.record(
                session,
                principal.actor,
                "user.create",
                patient_id=body.patient_id,
                detail={"username": user.username, "role": user.role.value},
            )
    except MedFusionError as error:
        with db.session() as session:
            audit.record(
                session,
                principal.actor,
                "user.create",
                audit.Outcome.failed,
                detail={"username": body.username, "error": error.code},
            )
        raise
    return user
