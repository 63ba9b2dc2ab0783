"""SQLAlchemy 2 tables. Alembic migrations under ``migrations/`` create exactly this schema.

Each chart resource is stored as its validated JSON ``body`` (lossless) plus the columns searches need
(department, ICD-10 code, time …). ``position`` keeps the order the chart was written in.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

JsonBody = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class PatientRow(Base):
    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64), index=True)  # R4 Patient.name 0..* (0013)
    sex: Mapped[str] = mapped_column(String(10))
    birth_date: Mapped[date | None] = mapped_column(Date)  # R4 Patient.birthDate 0..1 (0014)
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True)
    body: Mapped[dict[str, Any]] = mapped_column(JsonBody)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the newest version in resource_versions (migration 0012)
    version: Mapped[int] = mapped_column(Integer, server_default=sql_text("1"))


class _ChartItem:
    """Columns shared by every resource that belongs to one patient's chart. ``version`` is the newest
    version in ``resource_versions``; a soft-deleted resource keeps its row with ``deleted_at`` set."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    encounter_id: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JsonBody)
    version: Mapped[int] = mapped_column(Integer, server_default=sql_text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @declared_attr
    def patient_id(cls) -> Mapped[str]:
        return mapped_column(
            String(64), ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True, index=True
        )


class EncounterRow(_ChartItem, Base):
    __tablename__ = "encounters"
    encounter_class: Mapped[str] = mapped_column(String(20))
    department: Mapped[str | None] = mapped_column(String(200), index=True)  # R4 0..1 (0013)
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # R4 0..1 (0013)


class ConditionRow(_ChartItem, Base):
    __tablename__ = "conditions"
    icd10_code: Mapped[str | None] = mapped_column(String(40), index=True)  # None: unmapped (0013)


class ObservationRow(_ChartItem, Base):
    __tablename__ = "observations"
    category: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    effective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # R4 0..1 (0013)


class ProcedureRow(_ChartItem, Base):
    __tablename__ = "procedures"
    icd9cm3_code: Mapped[str | None] = mapped_column(String(20), index=True)  # None: unmapped (0013)


class MedicationRow(_ChartItem, Base):
    __tablename__ = "medication_requests"
    atc_code: Mapped[str | None] = mapped_column(String(10), index=True)
    drug_name: Mapped[str] = mapped_column(String(200))


class AllergyRow(_ChartItem, Base):
    __tablename__ = "allergies"


class ImmunizationRow(_ChartItem, Base):
    __tablename__ = "immunizations"


class NoteRow(_ChartItem, Base):
    __tablename__ = "clinical_notes"
    note_type: Mapped[str] = mapped_column(String(20))
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


CHILD_TABLES: dict[str, type[_ChartItem]] = {
    "encounters": EncounterRow,
    "conditions": ConditionRow,
    "observations": ObservationRow,
    "procedures": ProcedureRow,
    "medications": MedicationRow,
    "allergies": AllergyRow,
    "immunizations": ImmunizationRow,
    "notes": NoteRow,
}


class ResourceVersionRow(Base):
    """Every version of demographics (``kind`` ``patient``) and of each chart resource: its full content,
    who wrote it, when, through which path (``source``) and why. Rows are only ever added; version 1 is
    the creation, a ``deleted`` row holds the content as it was when it was soft-deleted. No foreign key:
    the history outlives anything done to the current rows."""

    __tablename__ = "resource_versions"

    patient_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # patient | encounters | conditions | … (chart parts)
    resource_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, autoincrement=False)
    action: Mapped[str] = mapped_column(String(20))  # created | updated | merged | deleted | restored
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(60))  # the write path: fhir.import, chart.replace …
    reason: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[list[Any]] = mapped_column(JsonBody)  # field names that differ from the prior version
    body: Mapped[dict[str, Any]] = mapped_column(JsonBody)

    __table_args__ = (PrimaryKeyConstraint("patient_id", "kind", "resource_id", "version"),)


class PatientIdentifierRow(Base):
    """A Patient identifier beside the 身份证号 (MRN, 医保号 …): one (system, value) names one person, so
    an import with a different resource id but a stored identifier is matched to that person."""

    __tablename__ = "patient_identifiers"

    system: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(100), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    patient_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("patients.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # tokens carry the version they were issued under; raising it signs every session out (0015)
    token_version: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"))
    # an administrator set a temporary password: nothing is allowed until the user sets their own (0015)
    must_change_password: Mapped[bool] = mapped_column(server_default=sql_text("false"))
    # failed sign-ins before this instant no longer count towards a lockout (an administrator's unlock, 0015)
    unlocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """Append-only (database triggers refuse UPDATE and DELETE); each row hashes the previous one."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_patient_id", "patient_id"),
        Index("ix_audit_log_actor_action", "actor", "action"),
    )


class AuditHeadRow(Base):
    """One row: the latest sequence number and hash; appends lock it to serialise the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class JobChunkRow(Base):
    """A chunk of a batch job whose results were written to this database (exactly-once marker)."""

    __tablename__ = "job_chunks"

    job_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    items: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KbDocumentRow(Base):
    """A knowledge-base document, identified by where it came from (re-ingesting a source updates it)."""

    __tablename__ = "kb_documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(1000), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    doc_type: Mapped[str] = mapped_column(String(20))
    authority: Mapped[str] = mapped_column(String(10))
    publisher: Mapped[str | None] = mapped_column(String(200))
    published: Mapped[date | None] = mapped_column(Date)
    department: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pack: Mapped[str | None] = mapped_column(String(100), index=True)  # the knowledge pack that brought it


class KbMetaRow(Base):
    """What the stored index depends on, e.g. the tokeniser's signature (a change re-tokenises)."""

    __tablename__ = "kb_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class KbPackRow(Base):
    """An installed knowledge pack (documents, triples, vocabulary, vectors) and its manifest."""

    __tablename__ = "kb_packs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(40))
    licence: Mapped[str] = mapped_column(String(200))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    installed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KbChunkRow(Base):
    """Chunk text stored once per content hash, with its tokens for the sparse index."""

    __tablename__ = "kb_chunks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    norm_hash: Mapped[str] = mapped_column(String(32), index=True)
    word_tokens: Mapped[str] = mapped_column(Text)
    bigram_tokens: Mapped[str] = mapped_column(Text)

    # PostgreSQL full-text over the stored tokens (migration 0007); SQLite ranks in memory instead
    __table_args__ = (
        Index(
            "ix_kb_chunks_words_fts", sql_text("to_tsvector('simple', word_tokens)"), postgresql_using="gin"
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_kb_chunks_bigrams_fts",
            sql_text("to_tsvector('simple', bigram_tokens)"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
    )


class KbChunkRefRow(Base):
    """Where a chunk occurs: one row per document position, so a deduplicated chunk keeps every source."""

    __tablename__ = "kb_chunk_refs"

    chunk_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("kb_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("kb_documents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    start: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    end: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(500))


class KbVectorRow(Base):
    """A chunk's embedding under one model, cached by the chunk's content hash (never computed twice)."""

    __tablename__ = "kb_vectors"

    chunk_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("kb_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class GraphEntityRow(Base):
    """A medical entity (disease, symptom, drug, check, department, body part …), one per type and name."""

    __tablename__ = "graph_entities"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    code_system: Mapped[str | None] = mapped_column(String(20))  # ICD-10 | ATC | ICD-9-CM-3 …
    code: Mapped[str | None] = mapped_column(String(40), index=True)


class GraphRelationRow(Base):
    """A typed triple with the source that asserts it (and a severity where one applies)."""

    __tablename__ = "graph_relations"

    head_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("graph_entities.id", ondelete="CASCADE"), primary_key=True
    )
    relation: Mapped[str] = mapped_column(String(40), primary_key=True)
    tail_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("graph_entities.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    severity: Mapped[str | None] = mapped_column(String(20))
    review_status: Mapped[str | None] = mapped_column(String(40))  # needs_clinician_review until signed
    note: Mapped[str | None] = mapped_column(Text)
    pack: Mapped[str | None] = mapped_column(String(100), index=True)  # the knowledge pack that brought it


class AgentRunRow(Base):
    """One agent run (``medfusion ask``, an app's agent): who asked, which path answered, every step."""

    __tablename__ = "agent_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    username: Mapped[str] = mapped_column(String(120), index=True)
    role: Mapped[str] = mapped_column(String(40))
    agent: Mapped[str] = mapped_column(String(60))
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(120))
    question: Mapped[str] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JsonBody)
    steps: Mapped[list[Any]] = mapped_column(JsonBody)
    # needs_clinician_confirmation until a clinician accepts (confirmed), edits or rejects it
    status: Mapped[str] = mapped_column(String(40), default="needs_clinician_confirmation")


class AgentTurnRow(Base):
    """A conversation turn, kept until it is summarised into memory."""

    __tablename__ = "agent_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(120), index=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summarised: Mapped[bool] = mapped_column(default=False)


class AgentMemoryRow(Base):
    """A (time, event, case, person) memory entry (医健助手 case, chapter 3 一.(一) 3), recalled across
    sessions; ``last_used_at`` drives decay and ``unusual`` slows it (anti-fragile retention)."""

    __tablename__ = "agent_memories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(120), index=True)
    session_id: Mapped[str] = mapped_column(String(64))
    time_text: Mapped[str] = mapped_column(String(60))
    event: Mapped[str] = mapped_column(Text)
    case_text: Mapped[str] = mapped_column(String(200))
    person: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    uses: Mapped[int] = mapped_column(Integer, default=0)
    unusual: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(20))


class FeedbackRow(Base):
    """A clinician's act on an assistive draft: accept, edit (with the edited text) or reject (with why)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    username: Mapped[str] = mapped_column(String(120), index=True)
    role: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # ask | consult | mdt | … (the agent that drafted)
    action: Mapped[str] = mapped_column(String(10))  # accept | edit | reject
    prompt: Mapped[str] = mapped_column(Text)
    draft: Mapped[str] = mapped_column(Text)
    edited: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    passages: Mapped[list[Any]] = mapped_column(JsonBody)  # chunk ids the draft cited


class KbFeedbackRow(Base):
    """One clinician decision about one cited passage, with the question it answered: feedback counts for
    later questions like that one (feedback/prior.py)."""

    __tablename__ = "kb_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chunk_id: Mapped[str] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(Text)
    grams: Mapped[list[Any]] = mapped_column(JsonBody)  # the question's character bigrams
    delta: Mapped[float] = mapped_column(Float)  # +1 accepted, +0.5 edited, −1 rejected
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecordEventRow(Base):
    """The outbox: one row per change to the record, written in the same transaction as the change.
    It carries ids and a hash of the resource, never the resource itself (store/events.py)."""

    __tablename__ = "record_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    resource: Mapped[str] = mapped_column(String(140))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    payload_hash: Mapped[str] = mapped_column(String(64))


class RecordEventHeadRow(Base):
    """One row: the newest event sequence number; appends lock it, so commit order is sequence order."""

    __tablename__ = "record_event_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)


class EventCheckpointRow(Base):
    """How far one subscriber (or the NATS relay's publisher) has got through the outbox."""

    __tablename__ = "event_checkpoints"

    subscriber: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventFailureRow(Base):
    """An event a subscriber raised on: retried with backoff until it succeeds (then ``resolved_at``)."""

    __tablename__ = "event_failures"

    subscriber: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_seq: Mapped[int] = mapped_column(
        Integer, ForeignKey("record_events.seq", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(500))
    first_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_retry_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventAppliedRow(Base):
    """Idempotency marker: this subscriber has applied this event (written with the subscriber's effect)."""

    __tablename__ = "event_applied"

    subscriber: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FhirRawResourceRow(Base):
    """Every FHIR resource an import received, as received (issue 15 part 3, migration 0013): what the
    record holds is exported back from here while unchanged; what it does not hold (Claim, CarePlan …)
    lives only here. Rows are only ever added — a changed resource of the same id is a new ``version``."""

    __tablename__ = "fhir_raw_resources"
    __table_args__ = (
        Index(
            "ix_fhir_raw_resources_key", "patient_id", "resource_type", "resource_id", "version", unique=True
        ),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    json: Mapped[dict[str, Any]] = mapped_column(JsonBody)
    content_hash: Mapped[str] = mapped_column(String(64))
    model_hash: Mapped[str | None] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
