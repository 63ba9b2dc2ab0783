"""The API's dependency providers (ARCHITECTURE.md, "The app frame"): one :class:`ApiProviders` per
application — the database, the principal from the bearer token, and long-lived knowledge base, graph and
general model for that database, each built once on first use — installed on ``app.state.providers`` for
the frame's ``Depends`` markers (:mod:`medfusion.apps.deps`), which every router uses.

The aliases below are the frame's, re-exported for the API's own routers."""

from __future__ import annotations

import threading

from medfusion.apps.deps import (
    DB,
    AppSettings,
    CurrentPrincipal,
    General,
    Knowledge,
    KnowledgeGraph,
    Providers,
    oauth2,
    providers,
    requires,
)
from medfusion.graph import Graph
from medfusion.knowledge import packs
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel, get_general_model
from medfusion.settings import Settings, get_settings
from medfusion.store import tokens
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database

__all__ = [
    "DB",
    "ApiProviders",
    "AppSettings",
    "CurrentPrincipal",
    "General",
    "Knowledge",
    "KnowledgeGraph",
    "Providers",
    "oauth2",
    "providers",
    "requires",
]


class ApiProviders:
    """What the routers stand on, for one database. The shipped knowledge packs are installed the first
    time the knowledge base or graph is asked for."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._lock = threading.Lock()
        self._kb: KnowledgeBase | None = None
        self._graph: Graph | None = None

    def principal(self, token: str | None) -> Principal:
        return tokens.principal_from_token(self.db, self.settings, token)

    def cached_principal(self, token: str | None) -> Principal | None:
        return tokens.cached_principal(self.db, self.settings, token)

    def _packs(self) -> None:
        packs.ensure_shipped(self.db)

    def knowledge(self) -> KnowledgeBase:
        # one instance per database keeps the in-memory index warm between requests
        with self._lock:
            if self._kb is None:
                self._packs()
                self._kb = KnowledgeBase(self.db)
            return self._kb

    def graph(self) -> Graph:
        # one store per database keeps the lexicon warm
        with self._lock:
            if self._graph is None:
                self._packs()
                self._graph = Graph(self.db)
            return self._graph

    def general(self) -> GeneralModel:
        # the process's one client for the current settings (shared breakers, limits and ledger)
        return get_general_model(get_settings())

    def require(self, principal: Principal, permission: Permission, action: str, message: str) -> None:
        tokens.require(self.db, principal, permission, action, message)
