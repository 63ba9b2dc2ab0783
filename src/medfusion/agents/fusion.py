"""What every fusion service (ask, consult, MDT) stands on: the database, who is asking, the general model,
the knowledge base and graph (long-lived instances from the API, fresh ones from the CLI), and guardrails
built from that graph when first needed."""

from __future__ import annotations

from functools import cached_property

from medfusion.agents.evidence import EvidenceBook
from medfusion.agents.guardrails import Guardrails
from medfusion.agents.tools import ToolContext
from medfusion.graph.store import GraphStore
from medfusion.knowledge.base import KnowledgeBase
from medfusion.llm import GeneralModel
from medfusion.store.access import Principal
from medfusion.store.database import Database
from medfusion.store.patient_service import PatientService


class FusionService:
    def __init__(
        self,
        db: Database,
        principal: Principal,
        general: GeneralModel,
        kb: KnowledgeBase | None = None,
        graph: GraphStore | None = None,
    ) -> None:
        """``kb``: pass a long-lived instance (the API keeps one warm per database)."""
        self.db = db
        self.principal = principal
        self.general = general
        self.graph = graph or GraphStore(db)
        self.kb = kb or KnowledgeBase(db)

    @cached_property
    def guardrails(self) -> Guardrails:
        return Guardrails(self.graph)

    def tool_context(self, patient_id: str | None) -> ToolContext:
        """A run's tools: a fresh evidence book, and the chart (read through the audited service) only
        when the run names a patient."""
        return ToolContext(
            kb=self.kb,
            graph=self.graph,
            book=EvidenceBook(),
            patients=PatientService(self.db, self.principal) if patient_id else None,
            patient_id=patient_id,
        )
