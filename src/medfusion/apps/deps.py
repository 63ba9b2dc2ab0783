"""The app frame's dependencies, as FastAPI ``Depends`` markers: the database, who is asking, the
knowledge base, the graph, the general model, and one audited permission check.

Routers (apps' and the API's own) declare what they need with these; the API supplies the
implementations (:class:`Providers`, installed on ``app.state.providers`` by ``api/deps.py``) — long-lived
instances per database, built once. So an app router never imports a surface, and a test can swap any
provider."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer

from medfusion.graph import Graph
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel
from medfusion.settings import Settings
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.tokens import refuse_pending_password

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


class Providers(Protocol):
    settings: Settings
    db: Database

    def principal(self, token: str | None) -> Principal: ...

    def cached_principal(self, token: str | None) -> Principal | None:
        """The principal without I/O when this process has just read its account, else ``None``."""

    def knowledge(self) -> KnowledgeBase: ...

    def graph(self) -> Graph: ...

    def general(self) -> GeneralModel: ...

    def require(self, principal: Principal, permission: Permission, action: str, message: str) -> None:
        """Refuse ``principal`` without ``permission``: audited as denied, then 403."""


def providers(request: Request) -> Providers:
    found: Providers = request.app.state.providers
    return found


def database(request: Request) -> Database:
    return providers(request).db


def settings(request: Request) -> Settings:
    return providers(request).settings


# The markers below are ``async`` where they only read app state: FastAPI runs a plain ``def`` dependency
# in its thread pool, one hop per dependency per request (issue 15 part 7). What blocks (the principal's
# SELECT) stays ``def``.
async def _database(request: Request) -> Database:
    return database(request)


async def _settings(request: Request) -> Settings:
    return settings(request)


# what a principal holding a temporary password may call: who am I, and choosing its own password
PASSWORD_CHANGE_ROUTES = frozenset({"/api/auth/me", "/api/users/me/password"})


async def principal(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> Principal:
    """Who holds the bearer token; one still holding a temporary password is refused everything else.

    A token seen before whose account's standing this process has just read costs no I/O, so it is
    answered on the event loop; only the read of the account (and a refusal's audit entry) takes the
    thread-pool hop (store.tokens, issue 15 part 7)."""
    given = providers(request)
    who = given.cached_principal(token)
    if who is None:
        who = await run_in_threadpool(given.principal, token)
    if who.must_change_password and request.url.path not in PASSWORD_CHANGE_ROUTES:
        route = request.scope.get("route")
        action = f"api:{request.method} {getattr(route, 'path', request.url.path)}"
        await run_in_threadpool(refuse_pending_password, given.db, who, action)
    return who


def knowledge(request: Request) -> KnowledgeBase:
    return providers(request).knowledge()


def graph(request: Request) -> Graph:
    return providers(request).graph()


def general(request: Request) -> GeneralModel:
    return providers(request).general()


DB = Annotated[Database, Depends(_database)]
AppSettings = Annotated[Settings, Depends(_settings)]
CurrentPrincipal = Annotated[Principal, Depends(principal)]
Knowledge = Annotated[KnowledgeBase, Depends(knowledge)]
KnowledgeGraph = Annotated[Graph, Depends(graph)]
General = Annotated[GeneralModel, Depends(general)]


class requires:
    """The one audited permission check: the signed-in principal when it holds ``permission``; otherwise
    the refusal is written to the audit log (``action``, by default the route) and answered 403."""

    def __init__(self, permission: Permission, action: str | None = None, message: str | None = None) -> None:
        self.permission = permission
        self.action = action
        self.message = message or f"需要 {permission.value} 权限 {permission.value} required"

    def __call__(self, request: Request, who: CurrentPrincipal) -> Principal:
        route = request.scope.get("route")
        action = self.action or f"api:{request.method} {getattr(route, 'path', request.url.path)}"
        providers(request).require(who, self.permission, action, self.message)
        return who
