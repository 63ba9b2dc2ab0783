"""Account administration for the API, the CLI and the admin page alike (``user:manage``): list, add,
disable / enable, reset a password, unlock, change a role, force a sign-out — and a user's own password
change. Each change is written with its audit entry in one transaction; a refused or failed change is
audited too (``failed`` with its error code), so the log says every attempt and how it ended.

Audit actions: ``user.list``, ``user.create``, ``user.disable``, ``user.enable``, ``user.reset_password``,
``user.unlock``, ``user.role``, ``user.sign_out``, ``user.password`` (the user's own change). Entries carry
the account's username and role, never a password."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from medfusion.errors import MedFusionError
from medfusion.settings import Settings
from medfusion.store import audit, users
from medfusion.store.access import Permission, Principal, Role
from medfusion.store.database import Database
from medfusion.store.login_guard import locked_until
from medfusion.store.tokens import Token, require, token_for

T = TypeVar("T")


class Account(users.User):
    """An account as administrators see it: with the end of a lockout in force, if any."""

    locked_until: datetime | None = None


class AccountAdmin:
    """What an administrator (or the local operator at the CLI) does to accounts, as ``principal``."""

    def __init__(self, db: Database, settings: Settings, principal: Principal) -> None:
        self.db = db
        self.settings = settings
        self.principal = principal

    def _locked(self, session: Session, username: str) -> datetime | None:
        return locked_until(
            session, username, self.settings.login_max_failures, self.settings.login_lockout_minutes
        )

    def _change(
        self,
        action: str,
        username: str,
        work: Callable[[Session], T],
        detail: dict[str, Any] | None = None,
        patient_id: str | None = None,
    ) -> T:
        require(
            self.db, self.principal, Permission.user_manage, action, "需要用户管理权限 user:manage required"
        )
        try:
            with self.db.session() as session:
                done = work(session)
                shown = {"username": username, **(detail or {})}  # read after the work: it may add to it
                audit.record(session, self.principal.actor, action, patient_id=patient_id, detail=shown)
        except MedFusionError as error:
            with self.db.session() as session:
                audit.record(
                    session,
                    self.principal.actor,
                    action,
                    audit.Outcome.failed,
                    patient_id=patient_id,
                    detail={"username": username, **(detail or {}), "error": error.code},
                )
            raise
        return done

    def accounts(self) -> list[Account]:
        require(
            self.db,
            self.principal,
            Permission.user_manage,
            "user.list",
            "需要用户管理权限 user:manage required",
        )
        with self.db.session() as session:
            found = [
                Account(**user.model_dump(), locked_until=self._locked(session, user.username))
                for user in users.list_users(session)
            ]
            audit.record(session, self.principal.actor, "user.list", detail={"count": len(found)})
        return found

    def add(
        self, username: str, password: str, role: Role | str, patient_id: str | None = None
    ) -> users.User:
        return self._change(
            "user.create",
            username,
            lambda s: users.create_user(s, username, password, role, patient_id),
            {"role": str(role)},
            patient_id,
        )

    def disable(self, username: str) -> users.User:
        return self._change("user.disable", username, lambda s: users.set_active(s, username, False))

    def enable(self, username: str) -> users.User:
        return self._change("user.enable", username, lambda s: users.set_active(s, username, True))

    def reset_password(self, username: str, temporary: str) -> users.User:
        """A temporary password; the user must choose their own at the next sign-in."""
        return self._change(
            "user.reset_password", username, lambda s: users.reset_password(s, username, temporary)
        )

    def unlock(self, username: str) -> users.User:
        return self._change("user.unlock", username, lambda s: users.unlock(s, username))

    def change_role(self, username: str, role: Role | str, patient_id: str | None = None) -> users.User:
        def work(session: Session) -> users.User:
            before = users.get_user(session, username)
            changed = users.set_role(session, username, role, patient_id)
            extra["from"] = before.role.value if before else None
            return changed

        extra: dict[str, Any] = {"role": str(role)}
        return self._change("user.role", username, work, extra, patient_id)

    def sign_out(self, username: str) -> users.User:
        """Every session of ``username`` ends (its tokens stop working on their next request)."""
        return self._change("user.sign_out", username, lambda s: users.revoke_sessions(s, username))


def change_own_password(
    db: Database, settings: Settings, principal: Principal, current: str, new: str
) -> Token:
    """The signed-in user's own new password (no permission needed: a temporary password allows only this).
    Their other sessions end; the returned token is the one to go on with."""
    actor = principal.actor
    try:
        with db.session() as session:
            users.change_own_password(session, principal.username, current, new)
            audit.record(session, actor, "user.password", detail={"username": principal.username})
    except MedFusionError as error:
        with db.session() as session:
            audit.record(
                session,
                actor,
                "user.password",
                audit.Outcome.failed,
                detail={"username": principal.username, "error": error.code},
            )
        raise
    return token_for(db, settings, principal.username)
