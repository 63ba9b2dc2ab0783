"""Entity and relation types of the medical knowledge graph, and the triple every importer produces."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, Field


class EntityType(StrEnum):
    disease = "disease"
    symptom = "symptom"
    sign = "sign"
    drug = "drug"
    drug_class = "drug_class"
    check = "check"
    lab_test = "lab_test"
    procedure = "procedure"
    department = "department"
    food = "food"
    body_part = "body_part"


# What a treated_by link may list under "常用药物": a procedure (光疗, CPAP) treats, but is no medicine.
MEDICINES = frozenset({EntityType.drug, EntityType.drug_class})


class Relation(StrEnum):
    has_symptom = "has_symptom"  # disease → symptom
    needs_check = "needs_check"  # disease → check
    treated_by = "treated_by"  # disease → drug
    belongs_to_department = "belongs_to_department"  # disease → department
    has_complication = "has_complication"  # disease → disease
    located_in = "located_in"  # disease → body part
    synonym_of = "synonym_of"  # alias → preferred name (same type)
    member_of = "member_of"  # drug → drug class, class → wider class, disease → wider condition
    uses_agent = "uses_agent"  # procedure → drug it administers (contrast media, anaesthetics)
    contraindicated_in = "contraindicated_in"  # drug/procedure → disease/condition
    interacts_with = "interacts_with"  # drug → drug (read both ways)
    cross_reacts_with = "cross_reacts_with"  # drug → drug (allergy; read both ways)
    not_with_food = "not_with_food"  # drug → food


class Severity(StrEnum):
    """One scale for every conflict; interactions and contraindications use the upper part, graded
    allergy cross-reactivity the lower (``negligible`` and ``none`` are reassurance, not alerts)."""

    contraindicated = "contraindicated"
    high = "high"
    major = "major"
    moderate = "moderate"
    caution = "caution"
    low = "low"
    minor = "minor"
    negligible = "negligible"
    none = "none"


SEVERITY_RANK = {s: i for i, s in enumerate(reversed(list(Severity)))}
NOT_AN_ALERT = {Severity.negligible, Severity.none}


class Triple(BaseModel):
    head: str = Field(min_length=1, max_length=200)
    head_type: EntityType
    relation: Relation
    tail: str = Field(min_length=1, max_length=200)
    tail_type: EntityType
    source: str = Field(min_length=1, max_length=200)
    severity: Severity | None = None
    review_status: str | None = None
    note: str | None = None


class EntityCode(BaseModel):
    """A code and the synonyms an entity is known by, from a vocabulary file or a code list."""

    name: str = Field(min_length=1, max_length=200)
    type: EntityType
    code_system: str | None = None
    code: str | None = None
    synonyms: list[str] = Field(default_factory=list)


def entity_id(kind: EntityType | str, name: str) -> str:
    return hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:32]


def split_terms(value: str | None) -> list[str]:
    """A comma-separated list of names or codes as typed (ASCII or full-width commas), blanks dropped."""
    if not value:
        return []
    return [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
