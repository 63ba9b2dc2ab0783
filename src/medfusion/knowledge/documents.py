"""What the knowledge base holds: documents with their provenance and authority, and the chunks cut from
them, each chunk addressable by a stable citation (document id, section path, character span) and its source.

Authority levels follow the three-level funnel of the 新华医院 智慧患者服务 case (seed report ch. 3):
科普通识 (general knowledge) → 专业指南 (professional guidelines) → 循证诊疗 (evidence-based practice).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from medfusion.contract import Citation


class DocType(StrEnum):
    guideline = "guideline"
    textbook = "textbook"
    drug_label = "drug_label"
    hospital_sop = "hospital_sop"
    faq = "faq"


class Authority(StrEnum):
    general = "科普通识"
    guideline = "专业指南"
    evidence = "循证诊疗"


class DocumentMeta(BaseModel):
    source: str = Field(description="The path or URL it was ingested from.")
    title: str
    doc_type: DocType = DocType.guideline
    authority: Authority = Authority.guideline
    publisher: str | None = None
    published: date | None = None
    department: str | None = None


class Chunk(BaseModel):
    id: str  # content hash: identical text is stored once
    document_id: str
    section: str
    start: int
    end: int
    text: str
    sources: list[str] = Field(default_factory=list)  # every source this chunk's text stands for


class Hit(BaseModel):
    chunk_id: str
    score: float
    text: str
    source: str
    citation: Citation
    doc_type: DocType
    authority: Authority
    channels: dict[str, int] = Field(default_factory=dict)  # rank in each retrieval channel
